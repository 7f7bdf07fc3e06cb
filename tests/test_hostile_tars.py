"""Hostile WebDataset tars through the real job: corrupt headers, split samples, sparse and bomb members,
truncation, garbage, links, bad pax, odd names, compressed tars and bad images inside them.

One run of ``python -m pipelines.curate`` (a subprocess: its peak RSS is measured) over every kind in
``tests/hostile_tar_corpus.tar_corpus``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile_checks import (
    TAR_RSS_BOUND,
    JobRun,
    check_conservation,
    mismatched_fates,
    read_rejects_by_source,
    run_job,
)
from tests.hostile_corpus import Corpus
from tests.hostile_tar_corpus import TAR_BOMB_BYTES, TAR_SPARSE_BYTES, tar_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tar_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Corpus, JobRun]:
    root = tmp_path_factory.mktemp("hostile-tars")
    corpus = tar_corpus(root)
    return corpus, run_job(corpus, root, "out")


def test_the_job_finishes_with_exit_0(tar_run: tuple[Corpus, JobRun]) -> None:
    _, run = tar_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr


def test_conservation_and_unique_keys(tar_run: tuple[Corpus, JobRun]) -> None:
    corpus, run = tar_run
    check_conservation(corpus, run)


def test_every_sample_gets_its_named_reason(tar_run: tuple[Corpus, JobRun]) -> None:
    corpus, run = tar_run
    assert mismatched_fates(corpus, run) == {}


def test_every_unread_byte_range_and_member_is_a_read_reject(tar_run: tuple[Corpus, JobRun]) -> None:
    corpus, run = tar_run
    assert read_rejects_by_source(corpus, run) == corpus.read
    corrupt = [r for r in run.rejects() if r["reason"] == "tar_corrupt" and r["detail"].startswith("t01")]
    assert len(corrupt) == 1 and "byte 2048:" in corrupt[0]["detail"]  # the offset of the broken header


def test_the_corrupt_header_costs_one_member_not_the_rest_of_the_tar(tar_run: tuple[Corpus, JobRun]) -> None:
    _, run = tar_run
    kept = [s for s in run.samples() if s["extra"]["source_sample"].startswith("s")]
    assert len(kept) == 10  # s01..s10; s00 lost its image to the corrupt header (image_missing)


def test_bomb_members_are_never_read(tar_run: tuple[Corpus, JobRun]) -> None:
    _, run = tar_run  # a 1.5 GiB member of zeros in a .tar.gz, a sparse member expanding to 2 GiB
    assert run.peak_rss < TAR_RSS_BOUND, f"peak RSS {run.peak_rss / 2**20:.0f} MiB"
    details = [r["detail"] for r in run.rejects() if r["stage"] == "read"]
    assert any(
        d.startswith(f"t04_bomb.tar.gz bomb at byte 0: bomb.jpg: {TAR_BOMB_BYTES} bytes declared")
        for d in details
    )
    assert any(f"sp.jpg: sparse file ({TAR_SPARSE_BYTES} bytes expanded)" in d for d in details)


def test_odd_names_are_written_as_valid_utf8(tar_run: tuple[Corpus, JobRun]) -> None:
    _, run = tar_run
    names = {s["extra"]["source_sample"] for s in run.samples()}
    assert "caf\ufffd" in names  # a latin-1 byte in a member name
    assert any(name.endswith("/名前") for name in names)  # a pax long name
    Path(run.output / "manifest.json").read_text(encoding="utf-8")
