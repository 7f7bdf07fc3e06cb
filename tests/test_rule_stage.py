"""pipelines/rule_stage.py on the real Beam runner: routing, rejects rows, counters once per bundle."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from filters.decision import Reject
from pipelines.records import METRICS_NAMESPACE
from pipelines.rule_stage import RuleStage, apply_rule_stage


class _ShortCaptions(RuleStage):
    stage = "probe"

    def judge(self, record, limit):
        if len(record["caption"]) > limit:
            return Reject("text_too_long", f"{len(record['caption'])} characters")
        return {**record, "checked": True}


def _records(n):
    return [{"key": f"k{i:03d}", "url": f"http://x/{i}", "caption": "a" * i} for i in range(n)]


def test_kept_records_rejects_rows_and_counters():
    pipeline = beam.Pipeline()
    records = pipeline | beam.Create(_records(30))
    limit = beam.pvalue.AsSingleton(pipeline | "Limit" >> beam.Create([9]))
    kept, rejects = apply_rule_stage(records, "Probe", _ShortCaptions(), limit)
    assert_that(
        kept | beam.Map(lambda r: (r["key"], r["checked"])),
        equal_to([(f"k{i:03d}", True) for i in range(10)]),
        label="Kept",
    )
    assert_that(
        rejects | beam.Map(lambda r: (r["key"], r["stage"], r["reason"], r["detail"])),
        equal_to([(f"k{i:03d}", "probe", "text_too_long", f"{i} characters") for i in range(10, 30)]),
        label="Rejects",
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    totals = {counter.key.metric.name: counter.committed for counter in counters}
    assert totals == {"probe/kept": 10, "probe/text_too_long": 20}


def test_reject_rows_carry_no_bulky_fields():
    pipeline = beam.Pipeline()
    records = pipeline | beam.Create(
        [{"key": "k", "url": "u", "caption": "x" * 20, "image_bytes": b"\xff" * 9}]
    )
    limit = beam.pvalue.AsSingleton(pipeline | "Limit" >> beam.Create([5]))
    _, rejects = apply_rule_stage(records, "Probe", _ShortCaptions(), limit)
    assert_that(
        rejects | beam.Map(lambda r: sorted(r)),
        equal_to([["caption", "detail", "key", "reason", "stage", "url"]]),
    )
    pipeline.run().wait_until_finish()
