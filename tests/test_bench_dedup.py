"""Smoke test: the dedup benchmark runs in --quick mode and its figures hold what the search promises."""

from __future__ import annotations

import json

import pytest

from benchmarks.bench_dedup import main
from filters.dedup import DEFAULT_DEDUP

pytestmark = pytest.mark.slow


def test_quick_dedup_benchmark_is_exact_and_bounded(capsys: pytest.CaptureFixture) -> None:
    assert main(["--quick"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["recall"]["losers"] > 100
    assert figures["recall"]["recall"] == figures["recall"]["precision"] == 1.0
    for row in figures["beam"] + list(figures["skew"].values()):
        assert row["kept"] + row["rejected"] == row["n"]
        assert 0 < row["largest_unit"] <= DEFAULT_DEDUP.max_group
    skew = figures["skew"]
    assert skew["identical_phash"]["rejected"] >= skew["identical_phash"]["case_images"] - 1
    assert [row["n"] for row in figures["in_memory"]] == sorted(row["n"] for row in figures["in_memory"])
