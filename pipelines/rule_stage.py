"""The one way a filtering stage drops records: ``RuleStage`` (and ``RoutingDoFn``) and ``apply_rule_stage``.

A stage's DoFn subclasses ``RuleStage``, names its ``stage`` and implements ``judge``: the record to
keep (possibly with fields added) or a ``Reject(reason, detail)`` (``filters/decision.py``). A DoFn
that judges records in batches (the fetch stage) subclasses ``RoutingDoFn`` and calls ``route`` per
record. The base routes rejects to the ``REJECTS`` output as rejects rows (``make_reject_row``) and
counts kept records and reasons in Beam Metrics in batches (at the end of a bundle, and at most once a
second within one, so the live progress line keeps moving), not once per record. ``apply_rule_stage``
runs a DoFn and returns ``(kept, rejects)``, the pair every stage composite returns; ``job.build``
reads the composite's ``stage`` for the funnel's order.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.decision import Reject
from pipelines.records import METRICS_NAMESPACE, REJECTS, Record, make_reject_row

FLUSH_SECONDS = 1.0  # counters reach the progress line at least this often within a long bundle


class RoutingDoFn(beam.DoFn):
    """Routes each verdict: a record to the main output, a ``Reject`` to ``REJECTS``; counts both."""

    stage = ""  # the funnel stage it counts under (a class attribute, or set per instance)
    counts_kept = True  # False for a step inside a stage whose last step counts what the stage keeps

    def start_bundle(self) -> None:
        self._counts: Counter[str] = Counter()
        self._flushed = time.monotonic()

    def route(self, record: Record, verdict: Record | Reject) -> Record | beam.pvalue.TaggedOutput:
        """What to yield for ``record`` judged ``verdict`` (the kept record, or its rejects row)."""
        if isinstance(verdict, Reject):
            self._counts[verdict.reason] += 1
            routed: Any = beam.pvalue.TaggedOutput(REJECTS, self.reject_row(record, verdict))
        else:
            if self.counts_kept:
                self._counts["kept"] += 1
            routed = verdict
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self._flush()
        return routed

    def reject_row(self, record: Record, reject: Reject) -> Record:
        """The rejects row (a stage may add to it, e.g. a thumbnail)."""
        return make_reject_row(record, self.stage, reject.reason, reject.detail)

    def finish_bundle(self) -> None:
        self._flush()

    def _flush(self) -> None:
        for name, count in self._counts.items():
            Metrics.counter(METRICS_NAMESPACE, f"{self.stage}/{name}").inc(count)
        self._counts.clear()
        self._flushed = time.monotonic()


class RuleStage(RoutingDoFn):
    """A DoFn that keeps or rejects each record by ``judge``; subclasses set ``stage``."""

    def judge(self, record: Record, *side_inputs: Any, **named_side_inputs: Any) -> Record | Reject:
        raise NotImplementedError

    def process(self, record: Record, *side_inputs, **named_side_inputs) -> Iterator:
        # (no annotations on the side inputs: Beam would type-check them against the PCollections)
        yield self.route(record, self.judge(record, *side_inputs, **named_side_inputs))


def apply_rule_stage(
    records: beam.PCollection, label: str, rule: RoutingDoFn, *side_inputs: Any, **named_side_inputs: Any
) -> tuple[beam.PCollection, beam.PCollection]:
    """``records`` through ``rule`` (a ``RuleStage`` or ``RoutingDoFn``) under ``label``: ``(kept, rejects)``."""
    pardo = beam.ParDo(rule, *side_inputs, **named_side_inputs)
    checked = records | label >> pardo.with_outputs(REJECTS, main="kept")
    return checked.kept, checked[REJECTS]
