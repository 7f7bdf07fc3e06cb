"""MatchQueries (allowlist match, MetaCLIP semantics) and BalanceQueries (exact cap or MetaCLIP sampling).

Per-query counts are ``Count.PerElement`` over matched ids (a lifted combine: the head query "the" is
a hot value, never a hot key) and reach the records once, at match time, as a side input: each record
keeps its matched queries' counts and is credited to one query (``credit_query``: the rarest). Both
balances (before download, with a margin, and final) use these match-time values, so a record's
credited query never changes and a larger cap only adds records.

Exact cap: ``Top.SmallestPerKey(cap)`` over ``(credited query, cap_rank(key, seed))`` (lifted too)
gives each query with at least ``cap`` records the rank of its cap-th record; a record is kept when it
ranks at or before its query's threshold. Records are never grouped by query, only rank tuples are
combined, and the rule is exact: a query keeps min(credited, cap) records, as ``balance.exact_cap``.
MetaCLIP mode: ``balance.metaclip_keep`` per record, with the match-time counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from filters import balance
from filters.allowlist import load_allowlist
from filters.decision import Reject
from filters.matching import QueryMatcher
from pipelines.files import FileCache
from pipelines.records import Record
from pipelines.rule_stage import RuleStage, apply_rule_stage

MATCH_STAGE = "match"
PRE_DOWNLOAD_STAGE = "balance_pre_download"
FINAL_STAGE = "balance"
MODES = ("exact", "metaclip")

_MATCHERS = FileCache()


def load_matcher(path: str, case_sensitive: bool, semantics: str = "words") -> QueryMatcher:
    """The allowlist at ``path`` as a built Aho-Corasick matcher, once per worker process and file version."""

    def build(local: str) -> QueryMatcher:
        return QueryMatcher(load_allowlist(local), case_sensitive, semantics).build()

    return _MATCHERS.get(path, (case_sensitive, semantics), build)


class _Match(RuleStage):
    stage = MATCH_STAGE

    def __init__(self, path: str, case_sensitive: bool, semantics: str) -> None:
        self._path = path
        self._case_sensitive = case_sensitive
        self._semantics = semantics
        self._matcher: QueryMatcher | None = None

    def setup(self) -> None:
        self._matcher = load_matcher(self._path, self._case_sensitive, self._semantics)

    def judge(self, record: Record) -> Record | Reject:
        ids = self._matcher.match(record["caption"])
        reason = balance.check_query_match(ids)
        if reason is not None:
            return Reject(reason)
        return {**record, "query_ids": ids, "queries": [self._matcher.entries[i] for i in ids]}


def _credit(record: Record, counts: dict[int, int]) -> Record:
    """Credits the record to its rarest query, once, with match-time counts: both balances use this."""
    ids = record["query_ids"]
    credited = balance.credit_query(ids, counts)
    return {
        **record,
        "query_counts": [counts[i] for i in ids],
        "credited_id": credited,
        "credited_query": record["queries"][ids.index(credited)],
    }


class MatchQueries(beam.PTransform):
    """Adds ``query_ids``/``queries`` (matched allowlist entries), their pool-wide ``query_counts`` and the
    ``credited_query`` (``credit_query``: the rarest match); no match → ``no_query_match``."""

    stage = MATCH_STAGE  # its name in the funnel (job.build reads it)

    def __init__(self, allowlist_path: str, case_sensitive: bool = False, semantics: str = "words") -> None:
        super().__init__()
        self._path = allowlist_path
        self._case_sensitive = case_sensitive
        self._semantics = semantics  # filters.matching.SEMANTICS: the project's word matching, or MetaCLIP's

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        kept, rejects = apply_rule_stage(
            records, "Match", _Match(self._path, self._case_sensitive, self._semantics)
        )
        counts = beam.pvalue.AsDict(
            kept
            | "MatchedIds" >> beam.FlatMap(lambda r: r["query_ids"])
            | "RecordsPerQuery" >> beam.combiners.Count.PerElement()
        )
        return kept | "Credit" >> beam.Map(_credit, counts), rejects


def _rank(record: Record, seed: int) -> tuple[int, tuple[float, str]]:
    return record["credited_id"], balance.cap_rank(record["key"], seed)


def _threshold(
    item: tuple[int, list[tuple[float, str]]], cap: int
) -> Iterator[tuple[int, tuple[float, str]]]:
    query, smallest = item
    if len(smallest) >= cap:
        yield query, smallest[-1]


class _CapDoFn(RuleStage):
    """Keeps a record or rejects it as over the query cap (``stage`` is per instance: two balances)."""

    def __init__(self, stage: str, cap: int, seed: int) -> None:
        self.stage = stage
        self._cap = cap
        self._seed = seed


class _ExactCap(_CapDoFn):
    def judge(self, record: Record, thresholds: dict[int, tuple[float, str]]) -> Record | Reject:
        threshold = thresholds.get(record["credited_id"])
        if threshold is not None and balance.cap_rank(record["key"], self._seed) > threshold:
            return Reject(
                balance.QUERY_OVER_CAP, f"{record['credited_query']!r} has more than {self._cap} pairs"
            )
        return record


class _MetaClipSample(_CapDoFn):
    def judge(self, record: Record) -> Record | Reject:
        counts = dict(zip(record["query_ids"], record["query_counts"]))
        if balance.metaclip_keep(record["key"], record["query_ids"], counts, self._cap, self._seed):
            return record
        return Reject(balance.QUERY_OVER_CAP, f"no matched query kept it (t = {self._cap})")


class BalanceQueries(beam.PTransform):
    """Credited records (MatchQueries) → ``(kept, rejects)``, capped at ``cap`` per query.

    ``mode="exact"``: at most ``cap`` records credited to each query, exactly. ``mode="metaclip"``:
    MetaCLIP's sampling (each matched entry kept with probability ``cap / max(count, cap)``; a record
    stays when any of its entries is kept), capped only in expectation. ``stage`` names the rejects
    (the pre-download balance runs with a margin on the cap under its own stage name).
    """

    def __init__(self, stage: str, mode: str, cap: int, seed: int) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"balance mode must be one of {MODES}, not {mode!r}")
        self.stage = stage  # the funnel stage (job.build reads it)
        self._mode = mode
        self._cap = cap
        self._seed = seed

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        if self._mode == "metaclip":
            return apply_rule_stage(records, "Sample", _MetaClipSample(self.stage, self._cap, self._seed))
        thresholds = beam.pvalue.AsDict(
            records
            | "Rank" >> beam.Map(_rank, self._seed)
            | "SmallestPerQuery" >> beam.combiners.Top.SmallestPerKey(self._cap)
            | "Thresholds" >> beam.FlatMap(_threshold, self._cap)
        )
        return apply_rule_stage(records, "Cap", _ExactCap(self.stage, self._cap, self._seed), thresholds)
