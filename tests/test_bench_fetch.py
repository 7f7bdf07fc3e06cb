"""Smoke test: the fetch benchmark runs in --quick mode against its rate-limited 127.0.0.1 server."""

from __future__ import annotations

import re

import pytest

from benchmarks.bench_fetch import main

pytestmark = pytest.mark.slow


def test_quick_fetch_benchmark_prints_every_fetcher_against_the_baseline(
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "429 + Retry-After: 1 above 30 requests/s; median of 3 interleaved rounds" in out
    rows = {
        line[:54].strip(): line[54:].split()
        for line in out.splitlines()
        if line.startswith(("img2dataset", "fetch_url"))
    }
    assert len(rows) == 4 and rows["img2dataset download_image_with_retry"][-1] == "(baseline)"
    # The polite fetcher gets every image: it waits out the 429s instead of spending its retries on them.
    assert rows["fetch_url, default (keep-alive, backoff, Retry-After)"][1] == "60"
    assert all(re.fullmatch(r"\d+\.\d\d", row[0]) for row in rows.values())
