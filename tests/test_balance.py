"""Per-query balancing: exact cap invariants, MetaCLIP's probabilistic cap, pre-download margin."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from filters.balance import (
    DEFAULT_QUERY_CAP,
    NO_QUERY_MATCH,
    QUERY_OVER_CAP,
    cap_priority,
    cap_rank,
    check_metaclip_balance,
    check_query_match,
    credit_query,
    exact_cap,
    metaclip_keep,
    pre_download_cap,
)
from filters.hashing import unit_hash

CAP = 50


def zipf_pairs(n_pairs: int = 6000, n_queries: int = 40) -> list[tuple[str, list[int]]]:
    """Pairs matching 0-3 queries drawn from a Zipf-like popularity, decided by hashes."""
    weights = [1 / (rank + 1) for rank in range(n_queries)]
    cumulative = [sum(weights[: i + 1]) / sum(weights) for i in range(n_queries)]
    pairs = []
    for i in range(n_pairs):
        key = f"pair{i:05d}"
        n_matches = int(unit_hash(key, "n", 1) * 4)  # 0..3
        ids = set()
        for j in range(n_matches):
            u = unit_hash(key, f"q{j}", 1)
            ids.add(next(q for q, c in enumerate(cumulative) if u < c))
        pairs.append((key, sorted(ids)))
    return pairs


def match_counts(pairs) -> Counter:
    return Counter(q for _, ids in pairs for q in ids)


@pytest.fixture(scope="module")
def pairs():
    return zipf_pairs()


# ---------------------------------------------------------------- crediting


def test_credit_query_picks_rarest_then_lowest_id():
    counts = {1: 500, 2: 30, 3: 30, 4: 9000}
    assert credit_query([4, 1, 3, 2], counts) == 2
    assert credit_query([4, 1], counts) == 1
    assert credit_query([7, 1], counts) == 7  # unknown to the counts: nothing competes with it
    assert credit_query([2, 3], [0, 0, 8, 5]) == 3  # counts as a list indexed by id


@pytest.mark.parametrize("matched", [None, [], ()])
def test_credit_query_without_match(matched):
    assert credit_query(matched, {}) is None
    assert check_query_match(matched) == NO_QUERY_MATCH == "no_query_match"


def test_check_query_match_keeps_matches():
    assert check_query_match([3]) is None


def test_cap_priority_is_deterministic_per_seed():
    assert cap_priority("k", 0) == cap_priority("k", 0)
    assert cap_priority("k", 0) != cap_priority("k", 1)
    assert 0 <= cap_priority("k") < 1
    assert cap_rank("k", 3) == (cap_priority("k", 3), "k")


# ---------------------------------------------------------------- exact cap


def credited_groups(pairs, counts) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for key, ids in pairs:
        query = credit_query(ids, counts)
        if query is not None:
            groups.setdefault(query, []).append(key)
    return groups


def test_exact_cap_invariants(pairs):
    counts = match_counts(pairs)
    kept = exact_cap(pairs, counts, CAP, seed=0)
    groups = credited_groups(pairs, counts)
    assert any(len(keys) > CAP for keys in groups.values()), "the synthetic data must exceed the cap"
    assert any(len(keys) <= CAP for keys in groups.values()), "... and have queries under it"
    for keys in groups.values():
        kept_here = [k for k in keys if k in kept]
        assert len(kept_here) == min(len(keys), CAP)  # the cap holds exactly
        if len(keys) <= CAP:
            assert kept_here == keys  # queries under the cap are untouched
        else:  # and the kept ones are the CAP smallest ranks
            assert set(kept_here) == set(sorted(keys, key=lambda k: cap_rank(k, 0))[:CAP])
    unmatched = {key for key, ids in pairs if not ids}
    assert unmatched and not unmatched & kept


def test_exact_cap_seed_controls_selection(pairs):
    counts = match_counts(pairs)
    first = exact_cap(pairs, counts, CAP, seed=0)
    assert exact_cap(list(reversed(pairs)), counts, CAP, seed=0) == first  # order does not matter
    other = exact_cap(pairs, counts, CAP, seed=1)
    assert other != first
    assert len(other) == len(first)  # same per-query totals, different pairs


def test_exact_cap_total_on_odd_input():
    assert exact_cap([], {}, 5) == set()
    assert exact_cap([("a", None), ("b", [])], {}, 5) == set()
    with pytest.raises(ValueError, match="positive integer"):
        exact_cap([("a", [1])], {1: 1}, 0)


def test_pre_download_cap_keeps_a_superset_and_the_same_final_selection(pairs):
    counts = match_counts(pairs)  # match-time counts, used for crediting in both stages
    final = exact_cap(pairs, counts, CAP, seed=0)
    pre = exact_cap(pairs, counts, pre_download_cap(0.5, CAP), seed=0)
    assert final < pre
    survivors = [(key, ids) for key, ids in pairs if key in pre]
    assert exact_cap(survivors, counts, CAP, seed=0) == final
    # Some downloads fail: the final cap still holds, and over-cap queries refill from the margin.
    fetched = [(key, ids) for key, ids in survivors if unit_hash(key, "fetch_fails", 0) >= 0.3]
    after = exact_cap(fetched, counts, CAP, seed=0)
    pre_groups = credited_groups(fetched, counts)
    for keys in pre_groups.values():
        assert sum(k in after for k in keys) == min(len(keys), CAP)


def test_pre_download_cap_values():
    assert pre_download_cap(0.5) == math.ceil(DEFAULT_QUERY_CAP * 1.5) == 30_000
    assert pre_download_cap(0, 7) == 7
    assert pre_download_cap(0.1, 3) == 4
    for bad in (-0.1, float("nan"), "1"):
        with pytest.raises(ValueError, match="margin"):
            pre_download_cap(bad)


# ---------------------------------------------------------------- MetaCLIP mode


def test_metaclip_expected_counts_match_min_count_cap():
    cap = 200
    entry_counts = {0: 50, 1: 200, 2: 1000, 3: 4000, 4: 12000}
    texts = [(f"e{entry}t{i}", [entry]) for entry, n in entry_counts.items() for i in range(n)]
    kept = Counter(ids[0] for key, ids in texts if metaclip_keep(key, ids, entry_counts, cap, seed=3))
    for entry, count in entry_counts.items():
        if count <= cap:
            assert kept[entry] == count  # probability 1: every text kept
        else:
            p = cap / count
            sigma = math.sqrt(count * p * (1 - p))
            assert abs(kept[entry] - cap) <= 5 * sigma, (entry, kept[entry])


def test_metaclip_any_entry_keeps_the_text(pairs):
    counts = match_counts(pairs)
    cap = 60
    rare = {q for q, c in counts.items() if c <= cap}
    assert rare
    for key, ids in pairs:
        if set(ids) & rare:
            assert metaclip_keep(key, ids, counts, cap)


def test_metaclip_is_deterministic_and_monotone_in_cap(pairs):
    counts = match_counts(pairs)
    at = {k for k, ids in pairs if metaclip_keep(k, ids, counts, 30, seed=5)}
    assert at == {k for k, ids in pairs if metaclip_keep(k, ids, counts, 30, seed=5)}
    assert at != {k for k, ids in pairs if metaclip_keep(k, ids, counts, 30, seed=6)}
    assert at <= {k for k, ids in pairs if metaclip_keep(k, ids, counts, pre_download_cap(0.5, 30), seed=5)}


def test_check_metaclip_balance_reasons():
    counts = {1: 10**9}
    assert check_metaclip_balance("k", [], counts) == NO_QUERY_MATCH
    assert check_metaclip_balance("k", None, counts) == NO_QUERY_MATCH
    dropped = [k for k in (f"k{i}" for i in range(50)) if check_metaclip_balance(k, [1], counts, cap=1)]
    assert dropped and all(check_metaclip_balance(k, [1], counts, cap=1) == QUERY_OVER_CAP for k in dropped)
    assert QUERY_OVER_CAP == "query_over_cap"
    assert check_metaclip_balance("k", [2], counts) is None  # count unknown: kept
    assert metaclip_keep("k", None, counts) is False
