"""Per-query balancing: at most ``cap`` pairs per allowlist entry (CLIP: 20,000 per query).

Two modes.

Exact cap (this project's default). Every pair is *credited* to one query, the rarest it
matched (smallest global match count, ties by lowest id): the rarest query is the one the
pair is most informative for, and crediting it there keeps rare queries' pairs out of
competition with common ones. Per credited query, the pipeline keeps the ``cap`` pairs with
the smallest ``cap_rank(key, seed)`` (a Top-per-key combiner); ``exact_cap`` does
the same in memory as the reference. So the cap holds exactly for every query's *credited*
pairs, and a query with at most ``cap`` credited pairs keeps them all. A common query ("the")
can still occur in more than ``cap`` kept texts, through pairs credited to rarer queries.

MetaCLIP mode. Each matched entry independently keeps the pair with probability
``cap / max(count, cap)`` (decided by ``unit_hash(key, f"entry{id}", seed)``); the pair is kept
if any entry keeps it. The cap then holds only in expectation, as in MetaCLIP.

Before download, the same rule with ``pre_download_cap(margin)`` keeps a superset of the final
selection (priorities and hashes are fixed per key, so a larger cap only adds pairs), leaving
room for pairs the fetch and image rules will lose. Use the match-time counts for crediting in
both stages so that a pair's credited query does not change between them.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from filters.decision import KEEP, Verdict
from filters.hashing import unit_hash

QUERY_OVER_CAP = "query_over_cap"
NO_QUERY_MATCH = "no_query_match"
DEFAULT_QUERY_CAP = 20_000  # CLIP WIT and MetaCLIP: t = 20,000 pairs per query
CAP_PURPOSE = "query_cap"

Counts = Mapping[int, int] | Sequence[int]


def _count(counts: Counts, entry_id: int) -> int:
    # A query the counts do not know has no other pairs competing with this one.
    if isinstance(counts, Mapping):
        return counts.get(entry_id, 0)
    return counts[entry_id] if 0 <= entry_id < len(counts) else 0


def _check_cap(cap: int) -> None:
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
        raise ValueError(f"the per-query cap must be a positive integer, got {cap!r}")


def check_query_match(matched_ids: Sequence[int] | None) -> Verdict:
    """``no_query_match`` when a text matched no allowlist entry."""
    return KEEP if matched_ids else NO_QUERY_MATCH


def credit_query(matched_ids: Iterable[int] | None, counts: Counts) -> int | None:
    """The matched query a pair counts against: the rarest, ties by lowest id; None if none matched."""
    best: tuple[int, int] | None = None
    for entry_id in matched_ids or ():
        candidate = (_count(counts, entry_id), entry_id)
        if best is None or candidate < best:
            best = candidate
    return None if best is None else best[1]


def cap_priority(key: str, seed: int = 0) -> float:
    """A pair's priority inside its credited query (smaller is kept first)."""
    return unit_hash(key, CAP_PURPOSE, seed)


def cap_rank(key: str, seed: int = 0) -> tuple[float, str]:
    """The full ordering inside a credited query, ties broken by key: keep the ``cap`` smallest.

    A Beam pipeline uses ``Top.PerKey(cap, key=lambda k: cap_rank(k, seed), reverse=True)``
    (or an equivalent combiner); ``exact_cap`` uses the same ordering.
    """
    return cap_priority(key, seed), key


def exact_cap(
    pairs: Iterable[tuple[str, Iterable[int]]],
    counts: Counts,
    cap: int = DEFAULT_QUERY_CAP,
    seed: int = 0,
) -> set[str]:
    """Reference exact cap, in memory: the keys kept when each credited query keeps ``cap`` pairs.

    Pairs that matched nothing are not kept (``no_query_match``).
    """
    _check_cap(cap)
    by_query: dict[int, list[str]] = defaultdict(list)
    for key, matched_ids in pairs:
        query = credit_query(matched_ids, counts)
        if query is not None:
            by_query[query].append(key)
    kept: set[str] = set()
    for keys in by_query.values():
        kept.update(heapq.nsmallest(cap, keys, key=lambda k: cap_rank(k, seed)))
    return kept


def metaclip_keep(
    key: str,
    matched_ids: Iterable[int] | None,
    counts: Counts,
    cap: int = DEFAULT_QUERY_CAP,
    seed: int = 0,
) -> bool:
    """MetaCLIP balancing: kept if any matched entry passes its ``cap / max(count, cap)`` coin."""
    _check_cap(cap)
    for entry_id in matched_ids or ():
        probability = cap / max(_count(counts, entry_id), cap)
        if unit_hash(key, f"entry{entry_id}", seed) < probability:
            return True
    return False


def check_metaclip_balance(
    key: str,
    matched_ids: Iterable[int] | None,
    counts: Counts,
    cap: int = DEFAULT_QUERY_CAP,
    seed: int = 0,
) -> Verdict:
    """``metaclip_keep`` as a rule: ``no_query_match``, ``query_over_cap`` or keep."""
    matched_ids = list(matched_ids or ())
    if not matched_ids:
        return NO_QUERY_MATCH
    return KEEP if metaclip_keep(key, matched_ids, counts, cap, seed) else QUERY_OVER_CAP


def pre_download_cap(margin: float, cap: int = DEFAULT_QUERY_CAP) -> int:
    """The cap applied before fetching: ``ceil(cap * (1 + margin))``, so that after download
    failures and image rules (often 30-50% of pairs) about ``cap`` pairs per query remain."""
    _check_cap(cap)
    if not isinstance(margin, (int, float)) or math.isnan(margin) or margin < 0:
        raise ValueError(f"the pre-download margin must be a number >= 0, got {margin!r}")
    return math.ceil(cap * (1 + margin))
