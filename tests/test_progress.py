"""Live progress: counters read from Beam Metrics while bundles run (in-process and 2 worker processes),
one line rewritten in place on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.progress import ProgressDisplay, progress_line, run_with_progress, watched_pipeline

REPO = Path(__file__).resolve().parent.parent
ELEMENTS = 24


class _SlowFetch(beam.DoFn):
    """Counts like the fetch stage, slowly: a bundle takes seconds, so progress must see it half-way."""

    def process(self, element: int):
        time.sleep(0.12)
        Metrics.counter("curation", "fetch/kept" if element % 6 else "fetch/http_error").inc()
        yield element


def _run_slow_job(argv: list[str], stream: io.StringIO) -> None:
    pipeline, live = watched_pipeline(PipelineOptions(argv), "FnApiRunner")
    _ = pipeline | beam.Create(range(ELEMENTS)) | beam.ParDo(_SlowFetch())
    run_with_progress(pipeline, live, ["fetch"], ProgressDisplay("log", 0.25, stream))


def _fetch_counts(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"fetch (\d+)", text)]


def test_progress_line_shows_each_stage_out_dropped_and_the_fetch_rate() -> None:
    counters = {
        ("curation", "read/kept"): 2000,
        ("curation", "text/kept"): 1879,
        ("curation", "text/text_too_short"): 20,
        ("curation", "text/text_generic"): 100,
        ("curation", "fetch/kept"): 90,
        ("curation", "fetch/http_error"): 10,
        ("fetch", "attempts"): 130,
    }
    line = progress_line(counters, ["read", "text", "match", "fetch"], elapsed=65.0)
    assert line == "curate 1:05 | read 2000 | text 1879 (-120) | fetch 90 (-10, 1.5/s)"
    assert progress_line({}, ["read"], 3.0) == "curate 0:03 | starting"
    assert "| fetch 90 (-10) |" in progress_line(counters, ["fetch"], 65.0, fetch_rate=0.0)


def test_line_mode_rewrites_one_line_and_log_mode_prints_whole_lines() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    display = ProgressDisplay("auto", stream=terminal)
    assert display.mode == "line" and display.interval == 1.0
    display.update("curate 0:01 | read 10")
    display.update("curate 0:02 | read 20")
    assert "\n" not in terminal.getvalue() and terminal.getvalue().count("\r") == 2
    display.finish("curate 0:03 | read 30")
    assert terminal.getvalue().endswith("\rcurate 0:03 | read 30\x1b[K\n")

    log = io.StringIO()
    display = ProgressDisplay("auto", 7.0, stream=log)
    assert (display.mode, display.interval) == ("log", 7.0)
    display.update("curate 0:07 | read 10")
    display.finish("curate 0:09 | read 30")
    assert log.getvalue() == "curate 0:07 | read 10\ncurate 0:09 | read 30\n"
    quiet = io.StringIO()
    ProgressDisplay("off", stream=quiet).finish("x")
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(
    "argv",
    [[], ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]],
    ids=["in_process", "two_worker_processes"],
)
def test_counters_of_a_bundle_still_running_are_shown(argv: list[str]) -> None:
    stream = io.StringIO()
    _run_slow_job(argv, stream)
    counts = _fetch_counts(stream.getvalue())
    assert counts[-1] == ELEMENTS - ELEMENTS // 6  # the final line: every element counted once
    assert stream.getvalue().splitlines()[-1].endswith(f"fetch {ELEMENTS - ELEMENTS // 6} (-4)")
    # At least one line was written while the bundle was half done: read from the running bundle.
    assert any(0 < n < counts[-1] for n in counts), stream.getvalue()
    assert counts == sorted(counts)


_CHILD = """
import io, sys
from tests.test_progress import _SlowFetch, ELEMENTS
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from pipelines.progress import ProgressDisplay, run_with_progress, watched_pipeline
pipeline, live = watched_pipeline(PipelineOptions([]), "FnApiRunner")
_ = pipeline | beam.Create(range(ELEMENTS)) | beam.ParDo(_SlowFetch())
run_with_progress(pipeline, live, ["fetch"], ProgressDisplay("auto", 0.5))
"""


def _child(stderr: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def test_auto_mode_updates_in_place_on_a_terminal_and_logs_lines_into_a_pipe() -> None:
    controller, terminal = pty.openpty()
    child = _child(terminal)
    os.close(terminal)
    seen = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the child closed its side of the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert child.wait(timeout=60) == 0
    on_terminal = seen.decode()
    updates = on_terminal.split("\x1b[K")  # each update ends by clearing the rest of the line
    assert len(updates) - 1 >= 3 and all(u.startswith("\r") or "\r" in u for u in updates[1:-1] + updates[:1])
    # Every update but the last is rewritten in place (no newline after it); the last one ends the line.
    assert not any(u.startswith(("\n", "\r\n")) for u in updates[1:-2])
    assert updates[-1].startswith(("\n", "\r\n"))

    piped = _child(subprocess.PIPE)
    _, err = piped.communicate(timeout=120)
    assert piped.returncode == 0
    lines = [line for line in err.decode().splitlines() if line.startswith("curate ")]
    assert len(lines) >= 3 and "\r" not in err.decode()
    assert _fetch_counts(lines[-1]) == [ELEMENTS - ELEMENTS // 6]
