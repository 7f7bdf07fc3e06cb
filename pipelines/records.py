"""The record that flows through the curation job, and how a stage drops one.

Records are plain dicts (cheap to pickle between workers, no schema registry):
``key`` (stable sample key, no dots), ``url``, ``caption``, ``extra`` (input
columns carried into the sample's json) and, as stages add them, ``queries``,
``credited_query``, ``image_bytes``, ``width``/``height`` … A stage that drops a
record emits a reject instead, counted under ``curation/<stage>/<reason>``.
"""

from __future__ import annotations

import re
from typing import Any

from apache_beam.metrics import Metrics

Record = dict[str, Any]
REJECTS = "rejects"  # the tag of every stage's tagged rejects output
METRICS_NAMESPACE = "curation"
# Bulky fields are not copied into rejects: the rejects table must stay small.
_REJECT_FIELDS = ("key", "url", "caption")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_unicode(text: str) -> str:
    """``text`` with lone surrogates (from ``"\\ud800"`` escapes or undecodable names) replaced by
    U+FFFD, so it can be written as UTF-8 (json, parquet) anywhere later."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def make_reject(record: Record, stage: str, reason: str, detail: str = "") -> Record:
    """A rejects row for ``record`` dropped by ``stage`` for ``reason``, counted in Beam Metrics.

    For stages that are not a ``RuleStage`` (which counts once per bundle instead)."""
    Metrics.counter(METRICS_NAMESPACE, f"{stage}/{reason}").inc()
    return make_reject_row(record, stage, reason, detail)


def make_reject_row(record: Record, stage: str, reason: str, detail: str = "") -> Record:
    """The rejects row for ``record`` dropped by ``stage`` for ``reason`` (not counted)."""
    row = {field: _as_text(record.get(field)) for field in _REJECT_FIELDS}
    row.update(stage=stage, reason=reason, detail=clean_unicode(detail[:500]))
    if isinstance(record.get("extra"), dict):  # the carried columns, so rejects join back to the input
        row["extra"] = record["extra"]
    if "source" in record:  # with --keep_fetched: which input file the record came from
        row["source"] = record["source"]
    return row


def count_kept(stage: str) -> None:
    Metrics.counter(METRICS_NAMESPACE, f"{stage}/kept").inc()


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")[:2000]
    return clean_unicode(str(value)[:2000])
