"""Hostile candidate tables through the real job: bad rows, URLs, files and servers (real HTTP on 127.0.0.1).

One run of ``python -m pipelines.curate`` (a subprocess, so its peak RSS is measured) over every kind
in ``tests/hostile_corpus.table_corpus``; each test checks one side of the result.
"""

from __future__ import annotations

import pytest

from tests.hostile_checks import (
    TABLE_RSS_BOUND,
    JobRun,
    check_conservation,
    mismatched_fates,
    read_rejects_by_source,
    run_job,
)
from tests.hostile_corpus import SERVER_CASES, Corpus, table_corpus
from tests.hostile_server import HostileServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Corpus, JobRun, HostileServer]:
    root = tmp_path_factory.mktemp("hostile-tables")
    with HostileServer(lifetime=300) as server:
        corpus = table_corpus(root, server)
        run = run_job(corpus, root, "out")
        yield corpus, run, server


def test_the_job_finishes_with_exit_0(table_run: tuple[Corpus, JobRun, HostileServer]) -> None:
    _, run, _ = table_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr


def test_conservation_and_unique_keys(table_run: tuple[Corpus, JobRun, HostileServer]) -> None:
    corpus, run, _ = table_run
    check_conservation(corpus, run)


def test_every_row_url_and_server_case_gets_its_named_reason(
    table_run: tuple[Corpus, JobRun, HostileServer],
) -> None:
    corpus, run, _ = table_run
    assert len(corpus.captions) >= 75
    assert mismatched_fates(corpus, run) == {}


def test_read_rejects_per_file(table_run: tuple[Corpus, JobRun, HostileServer]) -> None:
    corpus, run, _ = table_run
    assert read_rejects_by_source(corpus, run) == corpus.read


def test_bombs_stay_within_the_memory_bound(table_run: tuple[Corpus, JobRun, HostileServer]) -> None:
    _, run, _ = table_run  # a 1.5 GiB gzip body, a 64 MB .jsonl.gz of spaces, a 1.5 MB line
    assert run.peak_rss < TABLE_RSS_BOUND, f"peak RSS {run.peak_rss / 2**20:.0f} MiB"


def test_slow_servers_are_tried_at_most_retries_plus_one_times(
    table_run: tuple[Corpus, JobRun, HostileServer],
) -> None:
    _, _, server = table_run
    slow = [
        i for i, (behaviour, _) in enumerate(SERVER_CASES) if behaviour.endswith(("drip", "flood", "silent"))
    ]
    for index in slow:
        behaviour = SERVER_CASES[index][0]
        # --fetch_retries=1 and --fetch_total_deadline=3 with a 2 s deadline: the second try gets 1 s.
        assert 1 <= server.hits(f"/b/{behaviour}/s{index:02d}") <= 2, behaviour


def _kept(run: JobRun, token: str) -> dict:
    (sample,) = [
        s for s in run.samples() if s["caption"].endswith(f" {token}") or f" {token} " in s["caption"]
    ]
    return sample


def test_what_is_kept_is_bounded_and_clean(table_run: tuple[Corpus, JobRun, HostileServer]) -> None:
    _, run, _ = table_run
    big = _kept(run, "r03")  # only a carried column was large: the row is kept, the column named
    assert "big_column" not in big["extra"] and big["extra"]["_omitted_columns"] == {"big_column": 300002}
    assert _kept(run, "r04")["caption"] == "a red cat photo for case r04"  # no "[31m" left
    mixed = _kept(run, "r07")  # one cp1252 byte in a UTF-8 line: only that byte is read as cp1252
    assert "café photo" in mixed["caption"] and mixed["extra"]["plain"] == "naïve"
    assert _kept(run, "r05")["extra"]["note"] == "\ufffd"
    assert _kept(run, "r06")["extra"] == {"inf": None, "score": None}
    assert _kept(run, "c04")["caption"] == "a cat photo for case c04 over two lines"
