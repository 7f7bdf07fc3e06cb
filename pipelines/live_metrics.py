"""Beam Metrics of a job that is still running, read from the launching process.

Beam's local FnApiRunner runs ``pipeline.run()`` to the end before it returns a result, and in its
in-process mode a bundle (often a whole stage) runs inside one synchronous call: its ``metrics()`` are
only there afterwards. ``WatchedFnApiRunner`` is that runner with one addition: it sees each bundle it
hands to a worker (in-process or a worker process) and ``LiveMetrics.poll`` asks the bundles in flight
for their counters with the Fn API's own progress request (``ProcessBundleProgressRequest``, what Beam
sends to gRPC workers), while finished bundles count with their final metrics. So the counters move
while a bundle runs, on both of the runner's local modes.

Every other runner (Dataflow, Flink, Spark, BundleBasedDirectRunner) returns a running
``PipelineResult``; ``result_counters(result)`` reads its ``metrics()`` as they stand.

Counters are keyed ``(namespace, name)``; the curation job's are ``("curation", "<stage>/<reason>")``
and ``("curation", "<stage>/kept")`` (``pipelines.records``).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterable
from typing import Any

from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.portability import portable_metrics
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

Counters = dict[tuple[str, str], int]
_POLL_TIMEOUT = 2.0  # seconds one progress answer may take before the poll moves on


def _user_counters(infos: Iterable[Any]) -> Counters:
    counters, *_ = portable_metrics.from_monitoring_infos(list(infos), user_metrics_only=True)
    totals: Counters = {}
    for key, value in counters.items():
        name = (key.metric.namespace, key.metric.name)
        totals[name] = totals.get(name, 0) + int(value)
    return totals


def _add(into: Counters, more: Counters) -> None:
    for name, value in more.items():
        into[name] = into.get(name, 0) + value


class LiveMetrics:
    """User counters of finished bundles plus the latest snapshot of each bundle in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._finished: Counters = {}
        # instruction id → [the push it was sent with, its latest counters, its future once pushed]
        self._in_flight: dict[str, list[Any]] = {}
        self._watched: set[int] = set()
        self._ids = itertools.count()

    def watch(self, handler: Any) -> None:
        """Wraps ``handler.control_conn.push`` (once) so that bundles sent through it are seen."""
        conn = handler.control_conn
        with self._lock:
            if id(conn) in self._watched:
                return
            self._watched.add(id(conn))
        original = conn.push

        def push(request: Any) -> Any:
            # Anything but a bundle (registrations, progress requests, the close sentinel) passes through.
            if getattr(request, "WhichOneof", lambda _: None)("request") != "process_bundle":
                return original(request)
            if not request.instruction_id:
                request.instruction_id = f"watched-bundle-{next(self._ids)}"
            bundle = request.instruction_id
            with self._lock:
                self._in_flight[bundle] = [original, {}, None]
            try:
                future = original(request)  # in-process workers run the whole bundle inside this call
            except BaseException:
                with self._lock:
                    self._in_flight.pop(bundle, None)
                raise
            if future.is_done():
                self._finish(bundle, future)
            else:
                with self._lock:
                    self._in_flight[bundle][2] = future
            return future

        conn.push = push

    def _finish(self, bundle: str, future: Any) -> None:
        response = future.get()
        final = {} if response.error else _user_counters(response.process_bundle.monitoring_infos)
        with self._lock:
            if self._in_flight.pop(bundle, None) is not None:
                _add(self._finished, final)

    def poll(self) -> None:
        """Counts bundles that finished and asks every bundle still in flight for its counters."""
        with self._lock:
            in_flight = [(bundle, push, future) for bundle, (push, _, future) in self._in_flight.items()]
        for bundle, push, future in in_flight:
            if future is not None and future.is_done():
                self._finish(bundle, future)
                continue
            request = beam_fn_api_pb2.InstructionRequest(
                process_bundle_progress=beam_fn_api_pb2.ProcessBundleProgressRequest(instruction_id=bundle)
            )
            with contextlib.suppress(Exception):  # a worker that is busy or gone: the next poll asks again
                answer = push(request).get(timeout=_POLL_TIMEOUT)
                infos = answer.process_bundle_progress.monitoring_infos
                if answer.error or not infos:  # not started yet, or finished meanwhile
                    continue
                snapshot = _user_counters(infos)
                with self._lock:
                    if bundle in self._in_flight:
                        self._in_flight[bundle][1] = snapshot

    def counters(self) -> Counters:
        with self._lock:
            totals = dict(self._finished)
            for _, snapshot, _ in self._in_flight.values():
                _add(totals, snapshot)
        return totals


class WatchedFnApiRunner(FnApiRunner):
    """Beam's FnApiRunner whose bundles report to ``live`` while they run (see the module docstring)."""

    def __init__(self, live: LiveMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.live = live

    def _get_bundle_manager(self, bundle_context_manager: Any) -> Any:
        for handler in bundle_context_manager.worker_handlers:
            self.live.watch(handler)
        return super()._get_bundle_manager(bundle_context_manager)


def result_counters(result: Any) -> Counters:
    """User counters of a (running or finished) ``PipelineResult``; committed values where the runner
    has them, attempted ones otherwise (Dataflow reports attempted values while a job runs)."""
    totals: Counters = {}
    with contextlib.suppress(Exception):  # a runner without metrics support: no progress, no failure
        for counter in result.metrics().query()["counters"]:
            value = counter.committed if counter.committed is not None else counter.attempted
            name = (counter.key.metric.namespace, counter.key.metric.name)
            totals[name] = totals.get(name, 0) + int(value or 0)
    return totals
