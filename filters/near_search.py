"""Near-duplicate search over 64-bit pHashes with linear work: block-combination tables.

The scheme is Manku, Jain & Das Sarma, "Detecting near-duplicates for web crawling" (WWW 2007): split
the free bits of the hashes into ``B`` blocks. Two hashes within Hamming distance ``r`` differ in at
most ``r`` blocks, so they agree exactly on at least ``k = B - r`` of them (pigeonhole). A *table* is
one choice of ``k`` blocks and its key is those blocks' bits; every pair within ``r`` shares the key of
at least one of the ``C(B, k)`` tables. Looking for pairs only among hashes that share a table key
therefore finds all of them (recall 100 %), and the exact distance check keeps precision 100 %.

A table key has ``≈ k · 64 / B`` bits, so on spread-out hashes a key is shared by ``n / 2^bits`` of
them: ``plan_tables`` picks the ``B`` with the least expected work (``C(B, k)`` sorts of ``n`` keys
plus the pair checks inside the runs): the work per hash grows only when a larger ``n`` needs more
tables, a step every few doublings. A set larger than ``CHUNK`` is not sorted whole once per table:
tables that share their first kept block (the *lead*) are run together on chunks of about ``CHUNK``
hashes that a radix sort by the lead's bits cut out (equal keys of those tables always share the lead's
bits, so no run is split), and each table sorts only inside a chunk, in the cache. A run of equal keys
larger than ``RUN_LIMIT`` (skewed data) is searched again on its remaining free bits, and a set too
small or too concentrated to split (a dense cluster of near copies) is scanned in survivor order with
an early exit, so a cluster of ``m`` near copies costs about ``m · BRUTE_BLOCK`` checks, not ``m²``.

The outcome: an image loses when ANY better image (smaller survivor order) lies within the radius.
It depends only on the hashes and the order, never on how the work is split, so the Beam stage
(``pipelines/near_stages.py``), which splits the first table level across workers and runs this same
search inside each group, gives the same losers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, pairwise

import numpy as np

PHASH_BITS = 64
CHECK_WEIGHT = (
    0.35  # a pair check costs this share of a sorted key (fitted: bench_dedup at 1M, 8 and 9 blocks)
)
RUN_LIMIT = 64  # runs of equal keys above this are searched again on their remaining bits
BRUTE_LIMIT = 96  # sets this small are scanned directly
BRUTE_BLOCK = 256  # better hashes compared per step of the ordered scan
MAX_TABLES = 1000
CHUNK = 1 << 15  # hashes per chunk of a large set (plus at most one bucket): its sorts stay in the cache
RADIX_LIMIT = 1 << 16  # sets up to this size sort a 16-bit key digest (few merged runs at this size)
NO_WINNER = np.iinfo(np.int64).max
_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the high half mixes every key bit
_HALF = np.uint64(32)
_SHORT = np.uint64(48)
_LOW = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class TablePlan:
    """``C(blocks, keep)`` tables over the free bits; ``masks[t]`` selects table ``t``'s key bits."""

    radius: int
    blocks: int
    keep: int
    key_bits: int
    masks: tuple[int, ...]
    leads: tuple[int, ...] = ()  # ``leads[t]``: the mask of table ``t``'s first kept block

    def by_lead(self) -> list[tuple[int, list[int]]]:
        """The tables grouped by their first kept block, in plan order: ``[(lead mask, [table masks])]``."""
        groups: dict[int, list[int]] = {}
        for lead, mask in zip(self.leads, self.masks, strict=True):
            groups.setdefault(lead, []).append(mask)
        return list(groups.items())

    @property
    def tables(self) -> int:
        return len(self.masks)


def free_bits(fixed_mask: int) -> list[int]:
    """Bit positions not in ``fixed_mask``, most significant first."""
    return [bit for bit in range(PHASH_BITS - 1, -1, -1) if not fixed_mask >> bit & 1]


def block_masks(bits: list[int], blocks: int) -> list[int]:
    """``blocks`` contiguous groups of ``bits`` (widths differ by at most one) as bit masks."""
    base, extra = divmod(len(bits), blocks)
    masks, start = [], 0
    for index in range(blocks):
        width = base + (1 if index < extra else 0)
        masks.append(sum(1 << bit for bit in bits[start : start + width]))
        start += width
    return masks


@lru_cache(maxsize=4096)
def make_plan(radius: int, blocks: int, fixed_mask: int = 0) -> TablePlan:
    """The tables of ``blocks`` blocks over the bits outside ``fixed_mask`` (needs ``blocks > radius``)."""
    bits = free_bits(fixed_mask)
    if not 0 <= radius < blocks <= len(bits):
        raise ValueError(
            f"need 0 <= radius < blocks <= {len(bits)} free bits (radius={radius}, blocks={blocks})"
        )
    keep = blocks - radius
    block = block_masks(bits, blocks)
    chosen = list(combinations(range(blocks), keep))
    masks = tuple(sum(block[i] for i in kept) for kept in chosen)
    key_bits = min(mask.bit_count() for mask in masks)
    return TablePlan(radius, blocks, keep, key_bits, masks, tuple(block[kept[0]] for kept in chosen))


def plan_cost(plan: TablePlan, n: int) -> float:
    """Expected work on ``n`` spread-out hashes, in sorted keys: each table sorts ``n`` keys and checks
    about ``n / 2^(key_bits + 1)`` pairs per hash, a check costing ``CHECK_WEIGHT`` of a sorted key."""
    return plan.tables * (1 + CHECK_WEIGHT * n / 2 ** (plan.key_bits + 1))


def plan_tables(radius: int, n: int, fixed_mask: int = 0) -> TablePlan | None:
    """The plan with the least expected work (``plan_cost``) on ``n`` hashes, over at most ``MAX_TABLES``.

    ``None`` when no plan has a key of at least one bit (too few free bits).
    """
    free = len(free_bits(fixed_mask))
    best = None
    for blocks in range(radius + 1, free + 1):
        if math.comb(blocks, blocks - radius) > MAX_TABLES:
            break
        plan = make_plan(radius, blocks, fixed_mask)
        if plan.key_bits and (best is None or plan_cost(plan, n) < plan_cost(best, n)):
            best = plan
    return best


def _offer(best: np.ndarray, order: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Pairs (a, b) known to be within the radius: the worse of each pair records the better's order."""
    a_better = order[a] < order[b]
    loser = np.where(a_better, b, a)
    winner = np.where(a_better, a, b)
    np.minimum.at(best, loser, order[winner])


@dataclass
class SearchStats:
    """The work done: distance checks, keys sorted, the largest unit (hashes in one run or scanned set)."""

    checks: int = 0
    sorted_keys: int = 0
    largest_unit: int = 0


@dataclass
class _Search:
    hashes: np.ndarray
    order: np.ndarray
    radius: int
    best: np.ndarray
    stats: SearchStats

    blocks: int | None = None  # the top level's plan, when the caller fixes it
    everyone: np.ndarray | None = None  # np.arange(n), the top level's members

    def run(self, members: np.ndarray, fixed_mask: int, depth: int) -> None:
        n = len(members)
        if n < 2:
            return
        if n <= BRUTE_LIMIT or depth >= 2:
            plan = None
        elif depth == 0 and self.blocks is not None:
            plan = make_plan(self.radius, self.blocks, fixed_mask)
        else:
            plan = plan_tables(self.radius, n, fixed_mask)
        if plan is None:
            self.ordered_scan(members)
            return
        values = self.hashes[members]
        if n <= CHUNK:
            for mask in plan.masks:
                self.table(members, values, mask, fixed_mask, depth)
            return
        # A large set is cut once per lead block into cache-sized chunks that no table of that lead
        # splits a run of, so the many table sorts run in the cache: the time per hash stays flat in n.
        for lead, masks in plan.by_lead():
            for chunk_members, chunk_values in self.chunks(members, values, lead):
                for mask in masks:
                    self.table(chunk_members, chunk_values, mask, fixed_mask, depth)

    def chunks(self, members: np.ndarray, values: np.ndarray, lead: int):
        """``members`` and their hashes in runs of about ``CHUNK`` that keep equal ``lead`` bits together.

        A radix sort (numpy's stable sort of 16-bit keys) by a digest of the lead block: hashes with equal
        lead bits share a digest, and every key of the tables led by this block contains those bits.
        """
        n = len(members)
        bits = min(16, math.ceil(math.log2(n / CHUNK)) + 4)  # ~16 buckets per chunk
        bucket = (((values & np.uint64(lead)) * _SPREAD) >> np.uint64(PHASH_BITS - bits)).astype(np.uint16)
        by_bucket = np.argsort(bucket, kind="stable")
        members = by_bucket if self.identity(members) else members[by_bucket]
        values = values[by_bucket]
        ends = np.cumsum(np.bincount(bucket, minlength=1 << bits))
        cuts = np.unique(ends[np.searchsorted(ends, np.arange(CHUNK, n, CHUNK))])
        bounds = [0, *(int(cut) for cut in cuts if cut < n), n]
        for start, stop in pairwise(bounds):
            yield members[start:stop], values[start:stop]

    def table(self, members: np.ndarray, values: np.ndarray, mask: int, fixed_mask: int, depth: int) -> None:
        """Pairs inside every run of equal keys of one table; large runs are searched again."""
        # Equal keys are brought together by sorting a digest of the key: up to ``RADIX_LIMIT`` hashes by
        # numpy's radix sort of a 16-bit digest (stable argsort of uint16, ~4× a plain sort here), more by
        # one plain sort of (32-bit digest, position) packed into uint64. Two keys may share a digest; that
        # only merges their runs (more pairs checked exactly, none missed), and the recursion's pigeonhole
        # needs only the free bits.
        spread = (values & np.uint64(mask)) * _SPREAD
        self.stats.sorted_keys += len(members)
        if len(members) <= RADIX_LIMIT:
            digest = (spread >> _SHORT).astype(np.uint16)
            by_key = np.argsort(digest, kind="stable")
            keys = digest[by_key]
        else:
            packed = np.sort((spread >> _HALF << _HALF) | np.arange(len(members), dtype=np.uint64))
            keys, by_key = packed >> _HALF, None
        same = keys[1:] == keys[:-1]
        if not same.any():
            return
        shared = np.zeros(len(keys), dtype=bool)  # in a run of two or more: the only ones with work to do
        shared[1:] |= same
        shared[:-1] |= same
        where = np.flatnonzero(shared)
        local = (packed[where] & _LOW).astype(np.int64) if by_key is None else by_key[where]
        perm = local if self.identity(members) else members[local]
        values, keys = values[local], keys[where]
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        sizes = np.diff(np.append(starts, len(perm)))
        small = np.repeat(sizes <= RUN_LIMIT, sizes)
        if small.all():
            s_keys, s_values, s_perm = keys, values, perm
        else:
            s_keys, s_values, s_perm = keys[small], values[small], perm[small]
        if len(s_keys):
            self.stats.largest_unit = max(self.stats.largest_unit, int(sizes[sizes <= RUN_LIMIT].max()))
        # Every pair inside every small run, one offset at a time: partners ``step`` apart in the sorted
        # order share the key exactly when they are in the same run, so no pair index is ever built.
        for step in range(1, min(RUN_LIMIT, len(s_keys))):
            pairs = np.flatnonzero(s_keys[step:] == s_keys[:-step])
            if len(pairs) == 0:
                break
            self.stats.checks += len(pairs)
            near = np.bitwise_count(s_values[pairs] ^ s_values[pairs + step]) <= self.radius
            if near.any():
                hits = pairs[near]
                _offer(self.best, self.order, s_perm[hits], s_perm[hits + step])
        for start, size in zip(starts[sizes > RUN_LIMIT], sizes[sizes > RUN_LIMIT], strict=True):
            self.run(perm[start : start + size], fixed_mask | mask, depth + 1)

    def identity(self, members: np.ndarray) -> bool:
        """The top level's members are every position in order (a gather through them is a copy)."""
        return len(members) == len(self.hashes) and members is self.everyone

    def ordered_scan(self, members: np.ndarray) -> None:
        """Each hash with no better match yet against the better ones, best first, blockwise.

        A hash stops at its first match, so a dense cluster of near copies costs about its size times
        ``BRUTE_BLOCK`` checks; hashes already known to lose are only compared as the better side.
        """
        ranked = members[np.argsort(self.order[members], kind="stable")]
        self.stats.largest_unit = max(self.stats.largest_unit, len(ranked))
        hashes = self.hashes[ranked]
        open_ = self.best[ranked] == NO_WINNER
        for start in range(0, len(ranked) - 1, BRUTE_BLOCK):
            stop = min(start + BRUTE_BLOCK, len(ranked))
            later = np.flatnonzero(open_[start + 1 :]) + start + 1
            if len(later) == 0:
                break
            distances = np.bitwise_count(hashes[later, None] ^ hashes[None, start:stop])
            self.stats.checks += distances.size
            within = (distances <= self.radius) & (np.arange(start, stop)[None, :] < later[:, None])
            found = within.any(axis=1)
            hit = later[found]
            winners = ranked[start + within[found].argmax(axis=1)]
            self.best[ranked[hit]] = np.minimum(self.best[ranked[hit]], self.order[winners])
            open_[hit] = False


def near_losers(
    hashes: np.ndarray,
    order: np.ndarray,
    radius: int,
    fixed_mask: int = 0,
    stats: SearchStats | None = None,
    blocks: int | None = None,
) -> np.ndarray:
    """For each hash, the ``order`` of a better hash within ``radius`` (one that is kept first), else ``NO_WINNER``.

    ``hashes``: uint64 pHashes. ``order``: distinct int64 survivor positions (smaller = kept first).
    ``fixed_mask``: bits known to be equal among all ``hashes`` (a group that shares a table key), which
    the search does not spend tables on. ``blocks``: fix the first level's plan (``make_plan``) instead
    of choosing it from ``len(hashes)``, as a job sized for an expected ``n`` would. Which losers there
    are depends only on the input; which better hash a loser names may depend on how the search was split.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    order = np.asarray(order, dtype=np.int64)
    if hashes.shape != order.shape or hashes.ndim != 1:
        raise ValueError("hashes and order must be 1-d arrays of the same length")
    best = np.full(len(hashes), NO_WINNER, dtype=np.int64)
    search = _Search(hashes, order, radius, best, stats if stats is not None else SearchStats(), blocks)
    search.everyone = np.arange(len(hashes))
    search.run(search.everyone, fixed_mask, 0)
    return best


def brute_force_losers(hashes: np.ndarray, order: np.ndarray, radius: int) -> np.ndarray:
    """The same answer by comparing every pair: the reference the tests and the benchmark check against."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    order = np.asarray(order, dtype=np.int64)
    best = np.full(len(hashes), NO_WINNER, dtype=np.int64)
    rows = max(1, 2**24 // max(1, len(hashes)))  # ~16M distances (128 MB) per step whatever n
    for start in range(0, len(hashes), rows):
        chunk = slice(start, start + rows)
        distances = np.bitwise_count(hashes[chunk, None] ^ hashes[None, :])
        better = order[None, :] < order[chunk, None]
        candidates = np.where((distances <= radius) & better, order[None, :], NO_WINNER)
        best[chunk] = candidates.min(axis=1)
    return best
