"""The live progress of ``curate``: records in/out per stage, fetch rate and failures, elapsed time.

``run_with_progress(pipeline, stages, display)`` runs the pipeline and keeps ``display`` (a
``ProgressDisplay``) up to date from Beam Metrics while it runs (``pipelines.live_metrics``): on a
terminal one line rewritten in place (``\\r``) every second, otherwise (a log file, CI, a pipe) one
full line every ``interval`` seconds. The line reads the job's counters by their names,
``curation/<stage>/kept`` and ``curation/<stage>/<reason>``, so a stage is shown as soon as it counts::

    curate 0:42 | read 2000 | text 1879 (-120) | shared_alt_text 1840 (-39) | match 1838 (-2) |
      balance_pre_download 1838 | fetch 812 (-20, 19.3/s) | image 640 (-61) | …

(the fetch rate is over the last interval, so it drops to nothing when the fetch is done).
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import Any, TextIO

import apache_beam as beam

from pipelines.live_metrics import Counters, LiveMetrics, WatchedFnApiRunner, result_counters
from pipelines.records import METRICS_NAMESPACE

MODES = ("auto", "line", "log", "off")
DEFAULT_LOG_INTERVAL = 30.0
_LINE_REFRESH = 1.0
_KEPT = "kept"
_FETCH = "fetch"
_DONE_STATES = frozenset({"DONE", "FAILED", "CANCELLED", "UPDATED", "DRAINED", "STOPPED"})


def stage_counts(counters: Counters) -> dict[str, tuple[int, int]]:
    """``{stage: (kept, dropped)}`` from the curation counters seen so far."""
    found: dict[str, list[int]] = {}
    for (namespace, name), value in counters.items():
        if namespace != METRICS_NAMESPACE or "/" not in name:
            continue
        stage, reason = name.split("/", 1)
        counts = found.setdefault(stage, [0, 0])
        counts[0 if reason == _KEPT else 1] += value
    return {stage: (kept, dropped) for stage, (kept, dropped) in found.items()}


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(
    counters: Counters, stages: list[str], elapsed: float, fetch_rate: float | None = None
) -> str:
    """One line: each stage's records out (and dropped), the fetch rate (``fetch_rate``: URLs/s over the
    last interval; by default the average since launch), the time since launch."""
    counts = stage_counts(counters)
    parts = [f"curate {_elapsed(elapsed)}"]
    for stage in [*stages, *sorted(set(counts) - set(stages))]:
        if stage not in counts:
            continue
        kept, dropped = counts[stage]
        notes = [f"-{dropped}"] if dropped else []
        rate = fetch_rate if fetch_rate is not None else (kept + dropped) / elapsed if elapsed > 0 else 0.0
        if stage == _FETCH and rate > 0:
            notes.append(f"{rate:.1f}/s")
        parts.append(f"{stage} {kept}" + (f" ({', '.join(notes)})" if notes else ""))
    if len(parts) == 1:
        parts.append("starting")
    return " | ".join(parts)


class ProgressDisplay:
    """Where the line goes: ``line`` rewrites one terminal line, ``log`` prints a line every
    ``interval`` seconds, ``off`` prints nothing; ``auto`` is ``line`` on a terminal, else ``log``."""

    def __init__(
        self, mode: str = "auto", interval: float = DEFAULT_LOG_INTERVAL, stream: TextIO | None = None
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}")
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "line" if getattr(self.stream, "isatty", lambda: False)() else "log"
        self.mode = mode
        self.interval = _LINE_REFRESH if mode == "line" else interval
        self._shown = False

    def update(self, line: str) -> None:
        if self.mode == "line":
            width = max(20, shutil.get_terminal_size((120, 24)).columns - 1)
            self.stream.write("\r" + line[:width] + "\x1b[K")
            self.stream.flush()
            self._shown = True
        elif self.mode == "log":  # the caller calls every ``interval`` seconds
            self.stream.write(line + "\n")
            self.stream.flush()

    def finish(self, line: str) -> None:
        """The last state, on its own line, then the terminal line is left alone."""
        if self.mode == "off":
            return
        self.stream.write(("\r" + line + "\x1b[K\n") if self._shown else line + "\n")
        self.stream.flush()


def watched_pipeline(options: Any, runner_name: str) -> tuple[beam.Pipeline, LiveMetrics | None]:
    """A pipeline for ``options``; on Beam's FnApiRunner one whose counters can be read while it runs."""
    if runner_name == "FnApiRunner":
        live = LiveMetrics()
        return beam.Pipeline(runner=WatchedFnApiRunner(live), options=options), live
    return beam.Pipeline(options=options), None


def run_with_progress(
    pipeline: beam.Pipeline, live: LiveMetrics | None, stages: list[str], display: ProgressDisplay
) -> Any:
    """Runs ``pipeline`` to its end while ``display`` shows its progress; returns the result."""
    started = time.monotonic()
    last = [started, 0]  # when the fetch count was last seen, and what it was

    def show(counters: Counters) -> None:
        now = time.monotonic()
        fetched = sum(stage_counts(counters).get(_FETCH, (0, 0)))
        rate = (fetched - last[1]) / (now - last[0]) if now > last[0] else 0.0
        last[:] = [now, fetched]
        display.update(progress_line(counters, stages, now - started, rate))

    if live is not None:
        # FnApiRunner runs the job inside run(): run it on a thread and read the runner's live counters.
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["result"] = pipeline.run()
            except BaseException as error:  # re-raised on the launching thread below
                outcome["error"] = error

        worker = threading.Thread(target=target, name="curate-pipeline", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(display.interval if display.mode != "off" else None)
            if worker.is_alive():
                live.poll()
                show(live.counters())
        if "error" in outcome:
            raise outcome["error"]
        result = outcome["result"]
    else:
        result = pipeline.run()
        while str(getattr(result, "state", "DONE")).rsplit(".", 1)[-1] not in _DONE_STATES:
            try:
                result.wait_until_finish(duration=int(display.interval * 1000))
            except (TypeError, NotImplementedError):  # a result whose wait takes no duration (DirectRunner)
                result.wait_until_finish()
            show(result_counters(result))
    result.wait_until_finish()
    display.finish(progress_line(result_counters(result), stages, time.monotonic() - started, 0.0))
    return result
