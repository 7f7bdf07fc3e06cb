"""The one way a filtering stage drops records: a ``RuleStage`` DoFn and ``apply_rule_stage``.

A stage's DoFn subclasses ``RuleStage``, names its ``stage`` and implements ``judge``: the record to
keep (possibly with fields added) or a ``Reject(reason, detail)`` (``filters/decision.py``). The base
routes rejects to the ``REJECTS`` output as rejects rows (``make_reject_row``) and counts kept records
and reasons in Beam Metrics once per bundle, not once per record. ``apply_rule_stage`` runs such a DoFn
and returns ``(kept, rejects)``, the pair every stage composite returns; ``job.build`` reads the
composite's ``stage`` for the funnel's order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.decision import Reject
from pipelines.records import METRICS_NAMESPACE, REJECTS, Record, make_reject_row


class RuleStage(beam.DoFn):
    """A DoFn that keeps or rejects each record by ``judge``; subclasses set ``stage``."""

    stage = ""  # the funnel stage it counts under (a class attribute, or set per instance)
    counts_kept = True  # False for a step inside a stage whose last step counts what the stage keeps

    def judge(self, record: Record, *side_inputs: Any, **named_side_inputs: Any) -> Record | Reject:
        raise NotImplementedError

    def start_bundle(self) -> None:
        self._counts: Counter[str] = Counter()

    def process(self, record: Record, *side_inputs, **named_side_inputs) -> Iterator:
        # (no annotations on the side inputs: Beam would type-check them against the PCollections)
        verdict = self.judge(record, *side_inputs, **named_side_inputs)
        if isinstance(verdict, Reject):
            self._counts[verdict.reason] += 1
            yield beam.pvalue.TaggedOutput(REJECTS, self.reject_row(record, verdict))
        else:
            if self.counts_kept:
                self._counts["kept"] += 1
            yield verdict

    def reject_row(self, record: Record, reject: Reject) -> Record:
        """The rejects row (a stage may add to it, e.g. a thumbnail)."""
        return make_reject_row(record, self.stage, reject.reason, reject.detail)

    def finish_bundle(self) -> None:
        for name, count in self._counts.items():
            Metrics.counter(METRICS_NAMESPACE, f"{self.stage}/{name}").inc(count)
        self._counts.clear()


def apply_rule_stage(
    records: beam.PCollection, label: str, rule: RuleStage, *side_inputs: Any, **named_side_inputs: Any
) -> tuple[beam.PCollection, beam.PCollection]:
    """``records`` through ``rule`` (a ``RuleStage``) under ``label``: ``(kept, rejects)``."""
    pardo = beam.ParDo(rule, *side_inputs, **named_side_inputs)
    checked = records | label >> pardo.with_outputs(REJECTS, main="kept")
    return checked.kept, checked[REJECTS]
