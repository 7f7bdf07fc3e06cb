"""The curation job on the portable path Flink and Spark clusters use, run for real on this machine.

``--runner=PortableRunner`` with an embedded job service and an EXTERNAL environment: the SDK harness
runs in a worker pool (``apache_beam.runners.worker.worker_pool_main``) that this test starts as its
own process, as a cluster's task managers would. The dataset must be byte-identical to the in-process
run's: the portable path changes where the code runs, never what it writes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.curate import main
from tests.pipeline_fixtures import Pool, reference_run, shared_pool, shared_test_root

DATASET_FILES = ["manifest.json", "sizes.json", "stats.json", "vocabulary.json", "query_counts.json",
                 "tokenizer.json", "examples.json"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def worker_pool() -> Iterator[int]:
    """A Beam worker pool on 127.0.0.1 (its SDK harnesses run this interpreter); yields its port."""
    port = _free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # ready when it accepts connections
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert process.poll() is None, "the worker pool exited at start"
        time.sleep(0.2)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_portable_runner_with_an_external_worker_pool_writes_the_same_dataset(
    worker_pool: int, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = shared_test_root(tmp_path_factory)
    pool: Pool = shared_pool(root)
    in_process = reference_run(pool, root)
    output = tmp_path / "portable"
    portable = [
        "--runner=PortableRunner",
        "--job_endpoint=embed",
        "--environment_type=EXTERNAL",
        f"--environment_config=127.0.0.1:{worker_pool}",
    ]
    assert main(pool.args(output, *portable, report=True)) == 0
    names = sorted(p.name for p in in_process.glob("*.tar"))
    assert names and names == sorted(p.name for p in output.glob("*.tar"))
    for name in [*names, *DATASET_FILES]:
        assert (in_process / name).read_bytes() == (output / name).read_bytes(), name
