"""Retried bundles: a stage that fails once and is retried must leave the dataset byte for byte the same.

Which local runner retries what (apache-beam 2.77.0, read in the installed source):

- ``BundleBasedDirectRunner`` retries. ``runners/direct/executor.py``, ``TransformExecutor.call``, runs
  ``attempt_call`` up to ``_MAX_RETRY_PER_BUNDLE = 4`` times. Each attempt builds a fresh evaluator
  (``transform_evaluator.py``, ``_ParDoEvaluator.start_bundle``): the DoFn is pickled again (a new
  instance, ``setup`` and ``start_bundle`` run again) and the output bundles are new, and only a
  successful attempt's outputs are committed (``handle_result``). What a failed attempt emitted is
  dropped and its elements are processed again, as a distributed runner does with a failed work item.
  Beam Metrics are not rolled back there: ``TransformExecutor.call`` keeps one ``MetricsContainer``
  across attempts, so a counter incremented by the failed attempt stays in the committed value (a
  Map over 5 elements that failed once at the 4th reported ``committed == 9``). The job's
  ``curation/<stage>/<reason>`` counters over-count on a retry; ``stats.json`` is counted from the
  PCollections themselves, which this test checks.
- ``FnApiRunner`` (the job's default runner, in-process or ``multi_processing``) does not retry: the first
  exception in a bundle fails the job (Beam's own ``direct_runner_test.py``, ``DirectRunnerRetryTests``:
  "The FnApiRunner currently does not currently support retries", apache/beam#18640). Its retry
  behaviour cannot be observed locally; the test below checks that it really fails, so that this
  docstring is corrected if a Beam upgrade adds retries.

So the test runs the real job on ``BundleBasedDirectRunner`` with failures injected exactly once each
(claimed through a marker file, atomic across threads and processes) in three real stages, each AFTER the
failing attempt has already produced output:

- the image stage (``_CheckAndHash``, kept records and tagged rejects): fails after emitting a record;
- the labeller (``_Label``, WordNet loaded in ``setup``): fails after emitting a labelled record;
- the shard writer: fails after a tar has been written and renamed into place (a real side effect).

It then requires the shards, manifest, sizes, funnel, vocabulary, tokenizer, query counts and blocklist
to equal, byte for byte, the reference run that ``test_pipeline_curate`` also uses (same pool, same
options, the in-process FnApiRunner, no failure), and the rejects table to hold every rejected sample
exactly once, as in the reference.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
import pytest

from pipelines import write
from pipelines.curate import main
from pipelines.image_stages import _CheckAndHash
from pipelines.label_stages import _Label
from tests.pipeline_fixtures import Pool, reference_run, shared_pool, shared_test_root

pytestmark = pytest.mark.slow

# Every file of the dataset directory besides the shards (rejects are compared row by row: parquet
# row order is the runner's; report.html names its folder, so it differs between two outputs).
DATASET_FILES = (
    "examples.json",
    "manifest.json",
    "sizes.json",
    "stats.json",
    "vocabulary.json",
    "tokenizer.json",
    "query_counts.json",
    "eval_blocklist.json",
)


class InjectedFailure(RuntimeError):
    """The one failure a test injects; anything else failing is a real bug."""


class FailOnce:
    """Counts the calls of one stage; the ``fail_at``-th call raises, once per marker file.

    The marker is created with O_EXCL, so exactly one call anywhere (any thread, any worker process)
    wins the right to fail; every later call, including the retry of the failed one, passes.
    """

    def __init__(self, marker: Path, fail_at: int) -> None:
        self.marker = marker
        self.fail_at = fail_at
        self.seen: list[str] = []  # what each call processed, in order, retries included
        self._lock = threading.Lock()

    def should_fail(self, label: str) -> bool:
        with self._lock:
            self.seen.append(label)
            if len(self.seen) < self.fail_at:
                return False
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    @property
    def failed(self) -> bool:
        return self.marker.exists()

    def retried(self) -> list[str]:
        """Labels processed more than once: the elements of the failed attempt that ran again."""
        return sorted({label for label in self.seen if self.seen.count(label) > 1})


def failing_process(original: Callable[..., Iterator], failure: FailOnce) -> Callable[..., Iterator]:
    """A DoFn ``process`` that emits the record's outputs, then raises when ``failure`` says so."""

    @functools.wraps(original)
    def process(self: beam.DoFn, record: dict[str, Any]) -> Iterator:
        yield from original(self, record)
        if failure.should_fail(record["key"]):
            raise InjectedFailure(f"injected failure after {record['key']}")

    return process


def failing_write_tar(original: Callable[..., dict], failure: FailOnce) -> Callable[..., dict]:
    """``write_tar`` that writes and renames the tar, then raises when ``failure`` says so."""

    @functools.wraps(original)
    def write_tar(output: str, name: str, members: Any) -> dict:
        info = original(output, name, members)
        if failure.should_fail(name):
            raise InjectedFailure(f"injected failure after writing {name}")
        return info

    return write_tar


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_test_root(tmp_path_factory)


@pytest.fixture(scope="module")
def pool(shared_root: Path) -> Pool:
    return shared_pool(shared_root)


@pytest.fixture(scope="module")
def reference(pool: Pool, shared_root: Path) -> Path:
    """The job with no failure on the default in-process runner (the same run as test_pipeline_curate's)."""
    return reference_run(pool, shared_root)


def rejects(output: Path) -> list[dict]:
    """The rejects table's rows in a fixed order (the row order of the parquet files is the runner's)."""
    rows = pq.read_table(output / "rejects").to_pylist()
    return sorted(rows, key=lambda r: (r["stage"], r["reason"], r["key"], r["caption"], r["detail"]))


def test_bundles_failed_once_and_retried_give_the_same_dataset(
    pool: Pool, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The 2nd record into each stage: the failing attempt has emitted output (the 1st record's at least,
    # the failing record's own) that the runner must drop, not commit twice.
    image = FailOnce(tmp_path / "image.failed", fail_at=2)
    label = FailOnce(tmp_path / "label.failed", fail_at=2)
    shards = FailOnce(tmp_path / "shard.failed", fail_at=1)
    monkeypatch.setattr(_CheckAndHash, "process", failing_process(_CheckAndHash.process, image))
    monkeypatch.setattr(_Label, "process", failing_process(_Label.process, label))
    monkeypatch.setattr(write, "write_tar", failing_write_tar(write.write_tar, shards))

    output = tmp_path / "retried"
    assert main(pool.args(output, "--runner=BundleBasedDirectRunner", report=True)) == 0

    for stage in (image, label, shards):
        assert stage.failed, stage.marker.name  # the failure really happened ...
        assert stage.retried(), stage.marker.name  # ... and its bundle ran again
    stats = json.loads((reference / "stats.json").read_text())
    image_in = next(row["in"] for row in stats["stages"] if row["stage"] == "image")
    assert len(set(image.seen)) == image_in and len(image.seen) > image_in
    assert len(set(label.seen)) == stats["kept"]

    names = sorted(p.name for p in reference.glob("*.tar"))
    assert names == sorted(p.name for p in output.glob("*.tar")) and names
    for name in [*names, *DATASET_FILES]:
        assert (reference / name).read_bytes() == (output / name).read_bytes(), name
    assert not (output / "_tmp").exists()

    retried_rows = rejects(output)
    assert len({(row["key"], row["stage"]) for row in retried_rows}) == len(retried_rows)  # no duplicates
    assert retried_rows == rejects(reference)  # none lost, none changed
    assert len(retried_rows) == stats["dropped"]


def test_the_default_fnapi_runner_does_not_retry_a_failed_bundle(
    pool: Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If this starts passing the job through, Beam added retries: update the module docstring."""
    image = FailOnce(tmp_path / "image.failed", fail_at=1)
    monkeypatch.setattr(_CheckAndHash, "process", failing_process(_CheckAndHash.process, image))
    with pytest.raises(Exception, match="injected failure after"):
        main(pool.args(tmp_path / "out"))
    assert image.failed and not image.retried()
    assert not (tmp_path / "out" / "manifest.json").exists()
