"""With ``--key_column``: one record per key. Later rows with a key seen before are ``read/key_duplicate``.

Which row keeps the key is fixed by the data, not by bundle order: the one with the smallest ``row_id``
(the hash of its file, row and URL that is the key without ``--key_column``). Counting is a lifted
combine per key (a key in a million rows is a million increments, never a group of a million rows);
only the keys that occur more than once, with their winning row id, go to every worker as a side input,
so memory grows with the number of duplicated keys (about 150 bytes each), not with the pool.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam

from filters.decision import Reject
from pipelines.records import Record
from pipelines.rows import STAGE
from pipelines.rule_stage import RuleStage, apply_rule_stage

KEY_DUPLICATE = "key_duplicate"


class _CountAndFirst(beam.CombineFn):
    """(rows with the key, smallest row id)."""

    def create_accumulator(self) -> tuple[int, str | None]:
        return 0, None

    def add_input(self, accumulator: tuple[int, str | None], row_id: str) -> tuple[int, str | None]:
        count, first = accumulator
        return count + 1, row_id if first is None or row_id < first else first

    def merge_accumulators(self, accumulators: Iterable[tuple[int, str | None]]) -> tuple[int, str | None]:
        count, first = 0, None
        for more, candidate in accumulators:
            count += more
            if candidate is not None and (first is None or candidate < first):
                first = candidate
        return count, first

    def extract_output(self, accumulator: tuple[int, str | None]) -> tuple[int, str | None]:
        return accumulator


class _KeepFirst(RuleStage):
    stage, counts_kept = STAGE, False  # the read stage counts what it reads

    def judge(self, record: Record, duplicated: dict[str, tuple[int, str]]) -> Record | Reject:
        record = dict(record)
        row_id = record.pop("row_id", None)
        seen = duplicated.get(record["key"])
        if seen is not None and row_id != seen[1]:
            return Reject(
                KEY_DUPLICATE,
                f"key {record['key'][:60]!r} is on {seen[0]} rows; the one with row id {seen[1]} keeps it",
            )
        return record


class KeepUniqueKeys(beam.PTransform):
    """``records | KeepUniqueKeys()`` → ``(records with unique keys, key_duplicate rejects)``."""

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        duplicated = (
            records
            | "RowIds" >> beam.Map(lambda r: (r["key"], r.get("row_id") or ""))
            | "CountPerKey" >> beam.CombinePerKey(_CountAndFirst())
            | "Duplicated" >> beam.Filter(lambda item: item[1][0] > 1)
        )
        return apply_rule_stage(records, "KeepFirst", _KeepFirst(), beam.pvalue.AsDict(duplicated))
