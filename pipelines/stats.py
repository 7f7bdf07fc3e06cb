"""The funnel (stats.json), per-query counts (query_counts.json) and the rejects table (rejects/*.parquet).

Everything here is computed from the pipeline's own PCollections with combines, not from runner
metrics (which some runners report late, partially or not at all), so the files are the same on
every runner. ``stats.json``::

    {"read": N, "kept": K, "dropped": D, "conserved": N == K + D,
     "stages": [{"stage": "text", "in": ..., "dropped": ..., "out": ..., "reasons": {"text_too_short": ...}}, ...],
     "dropped_by_reason": {"text/text_too_short": ..., ...}}

``query_counts.json``: ``{"balance": mode, "per_query_cap": cap, "queries": [{"query", "matched",
"before_balance", "kept", "credited"}, ...]}`` sorted by ``matched`` descending, then query:
matches after MatchQueries, matches entering the final balance, matches in the output, and output
samples credited to the query (the count the exact cap bounds).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa

from contract.files import QUERY_COUNTS_FILE, REJECTS_DIR, STATS_FILE
from pipelines.files import write_json
from pipelines.records import Record

REJECT_TEXT_FIELDS = ("key", "url", "caption", "stage", "reason", "detail", "extra")
REJECT_SCHEMA = pa.schema([*((name, pa.string()) for name in REJECT_TEXT_FIELDS), ("thumbnail", pa.binary())])
DEFAULT_MAX_REJECT_EXTRA_BYTES = 4096


def funnel(
    read: int, kept: int, reasons: Iterable[tuple[tuple[str, str], int]], stages: list[str]
) -> dict[str, Any]:
    """The funnel document from the read count, the kept count and reject counts per (stage, reason)."""
    by_stage: dict[str, dict[str, int]] = {}
    for (stage, reason), count in reasons:
        by_stage.setdefault(stage, {})[reason] = count
    order = stages + sorted(set(by_stage) - set(stages))
    rows, remaining = [], read
    for stage in order:
        dropped = sum(by_stage.get(stage, {}).values())
        rows.append(
            {
                "stage": stage,
                "in": remaining,
                "dropped": dropped,
                "out": remaining - dropped,
                "reasons": dict(sorted(by_stage.get(stage, {}).items())),
            }
        )
        remaining -= dropped
    total_dropped = sum(row["dropped"] for row in rows)
    return {
        "read": read,
        "kept": kept,
        "dropped": total_dropped,
        "conserved": read == kept + total_dropped,
        "stages": rows,
        "dropped_by_reason": {
            f"{s}/{r}": n for s, reasons_ in sorted(by_stage.items()) for r, n in sorted(reasons_.items())
        },
    }


def _write_funnel(
    reasons: list, read: int, kept: int, output: str, stages: list[str], domains: dict | None = None
) -> str:
    document = funnel(read, kept, reasons, stages)
    if domains is not None:
        document["fetch_domains"] = domains  # pipelines.domain_stats
    return write_json(output, STATS_FILE, document)


class WriteFunnel(beam.PTransform):
    """``(read records, rejects, kept records[, fetch domain summary])`` → stats.json; returns a
    one-element PCollection of its name.

    ``read`` counts what ReadCandidates produced plus its own rejects (rows and files it could not read);
    the optional fourth input (``pipelines.domain_stats.SummariseDomains``) becomes ``fetch_domains``.
    """

    def __init__(self, output: str, stages: list[str]) -> None:
        super().__init__()
        self._output = output
        self._stages = stages

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> beam.PCollection:
        read, rejects, kept = inputs[:3]
        domains = [beam.pvalue.AsSingleton(inputs[3])] if len(inputs) > 3 else []
        read_rejects = rejects | "ReadRejects" >> beam.Filter(lambda r: r["stage"] == "read")
        read_count = (
            (read, read_rejects)
            | "AllRead" >> beam.Flatten()
            | "CountRead" >> beam.combiners.Count.Globally()
        )
        kept_count = kept | "CountKept" >> beam.combiners.Count.Globally()
        return (
            rejects
            | "StageReason" >> beam.Map(lambda r: (r["stage"], r["reason"]))
            | "CountReasons" >> beam.combiners.Count.PerElement()
            | "AllReasons" >> beam.combiners.ToList()
            | "Write"
            >> beam.Map(
                _write_funnel,
                beam.pvalue.AsSingleton(read_count),
                beam.pvalue.AsSingleton(kept_count),
                self._output,
                self._stages,
                *domains,
            )
        )


def extra_json(extra: object, max_bytes: int) -> str:
    """The carried columns as compact JSON of at most about ``max_bytes``; columns that do not fit are
    left out and named (with their size) under ``_omitted_columns``, as in the sample json."""
    if not isinstance(extra, dict) or not extra:
        return ""
    kept: dict[str, object] = {}
    omitted: dict[str, int] = {}
    used = 2
    for name in sorted(extra):
        size = len(_compact({name: extra[name]}).encode("utf-8", "surrogatepass"))
        if used + size > max_bytes:
            omitted[name] = size
        else:
            kept[name] = extra[name]
            used += size
    if omitted:  # the names of what was left out are bounded by the number of columns of the input
        kept["_omitted_columns"] = omitted
    return _compact(kept)


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _reject_row(record: Record, thumbnails: set[tuple[str, str]], max_extra_bytes: int) -> dict[str, Any]:
    row: dict[str, Any] = {name: str(record.get(name) or "") for name in REJECT_TEXT_FIELDS[:-1]}
    row["extra"] = extra_json(record.get("extra"), max_extra_bytes)
    thumbnail = record.get("thumbnail")
    chosen = thumbnail and (f"{row['stage']}/{row['reason']}", row["key"]) in thumbnails
    row["thumbnail"] = thumbnail if chosen else None
    return row


class WriteRejects(beam.PTransform):
    """All rejects → ``rejects/rejects-SSSSS-of-NNNNN.parquet``: key, url, caption, stage, reason, detail,
    ``extra`` (the carried input columns as JSON, at most ``max_extra_bytes``) and ``thumbnail`` (a small
    JPEG, kept only for the (stage/reason, key) pairs in ``thumbnail_keys``, a one-element PCollection
    of a set: ``pipelines.examples`` chooses at most K per reason)."""

    def __init__(
        self,
        output: str,
        thumbnail_keys: beam.PCollection | None = None,
        max_extra_bytes: int = DEFAULT_MAX_REJECT_EXTRA_BYTES,
    ) -> None:
        super().__init__()
        self._output = output
        self._thumbnail_keys = thumbnail_keys
        self._max_extra_bytes = max_extra_bytes

    def expand(self, rejects: beam.PCollection) -> beam.PCollection:
        prefix = f"{self._output.rstrip('/')}/{REJECTS_DIR}/rejects"
        keys = self._thumbnail_keys
        if keys is None:
            keys = rejects.pipeline | "NoThumbnails" >> beam.Create([set()])
        written = (
            rejects
            | "Rows" >> beam.Map(_reject_row, beam.pvalue.AsSingleton(keys), self._max_extra_bytes)
            | "Parquet" >> beam.io.WriteToParquet(prefix, REJECT_SCHEMA, file_name_suffix=".parquet")
        )
        return (
            written
            | "Done" >> beam.combiners.Count.Globally()
            | "DirName" >> beam.Map(lambda _: f"{REJECTS_DIR}/")
        )


def _query_rows(grouped: list[tuple[str, dict[str, int]]]) -> list[dict[str, Any]]:
    rows = [
        {"query": query, "matched": 0, "before_balance": 0, "kept": 0, "credited": 0, **counts}
        for query, counts in grouped
    ]
    return sorted(rows, key=lambda row: (-row["matched"], row["query"]))


class WriteQueryCounts(beam.PTransform):
    """Per-query counts at three points of the job → query_counts.json; returns its name.

    Counts are lifted combines per query string; only the finished table (one row per query that
    matched anything) is gathered on one worker.
    """

    def __init__(self, output: str, balance: str, cap: int) -> None:
        super().__init__()
        self._output = output
        self._header = {"balance": balance, "per_query_cap": cap}

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection, beam.PCollection]) -> beam.PCollection:
        matched, before, kept = inputs
        counted = []
        for label, records, field in (
            ("matched", matched, "queries"),
            ("before_balance", before, "queries"),
            ("kept", kept, "queries"),
            ("credited", kept, "credited_query"),
        ):
            counted.append(
                records
                | f"{label}Queries"
                >> beam.FlatMap(lambda r, f=field: r[f] if isinstance(r[f], list) else [r[f]])
                | f"{label}Count" >> beam.combiners.Count.PerElement()
                | f"{label}Tag" >> beam.MapTuple(lambda query, n, tag=label: (query, (tag, n)))
            )
        header, output = self._header, self._output
        return (
            counted
            | "AllCounts" >> beam.Flatten()
            | "PerQuery" >> beam.GroupByKey()  # at most four values per query: no hot key
            | "AsDict" >> beam.MapTuple(lambda query, counts: (query, dict(counts)))
            | "Table" >> beam.combiners.ToList()
            | "Write"
            >> beam.Map(
                lambda grouped: write_json(
                    output, QUERY_COUNTS_FILE, {**header, "queries": _query_rows(grouped)}
                )
            )
        )
