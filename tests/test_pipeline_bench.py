"""Smoke test: the pipeline benchmark runs end to end in --quick mode and prints its figures."""

from __future__ import annotations

import re

import pytest

from benchmarks.bench_pipeline import main

pytestmark = pytest.mark.slow


def test_quick_benchmark_prints_rates_per_core(capsys: pytest.CaptureFixture) -> None:
    assert main(["--quick", "--workers=1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"text stages: 2000 records", out)
    assert re.search(r"Beam in-process, 1 core +\d+ candidates/s/core", out)
    assert re.search(r"Beam in-process, 1 core +\d+ images/s/core", out)
    assert "1960 of 2000 candidates left the pre-download balance" in out
    assert "20 of 20 images reached the dedup verdicts" in out
