"""Near-duplicate search over 64-bit pHashes with linear work: block-combination tables.

The scheme is Manku, Jain & Das Sarma, "Detecting near-duplicates for web crawling" (WWW 2007): split
the free bits of the hashes into ``B`` blocks. Two hashes within Hamming distance ``r`` differ in at
most ``r`` blocks, so they agree exactly on at least ``k = B - r`` of them (pigeonhole). A *table* is
one choice of ``k`` blocks and its key is those blocks' bits; every pair within ``r`` shares the key of
at least one of the ``C(B, k)`` tables. Looking for pairs only among hashes that share a table key
therefore finds all of them (recall 100 %), and the exact distance check keeps precision 100 %.

A table key has ``≈ k · 64 / B`` bits, so on spread-out hashes a key is shared by ``n / 2^bits`` of
them: ``plan_tables`` picks the smallest ``B`` that keeps that at ``TARGET_BUCKET``, and the work is
``n · C(B, k)`` sorted keys plus a bounded number of pair checks per hash. A run of equal keys larger
than ``RUN_LIMIT`` (skewed data) is searched again on its remaining free bits, and a set too small or
too concentrated to split (a dense cluster of near copies) is scanned in survivor order with an early
exit, so a cluster of ``m`` near copies costs ``≈ m · BRUTE_BLOCK`` checks, not ``m²``.

The outcome: an image loses when ANY better image (smaller survivor order) lies within the radius.
It depends only on the hashes and the order, never on how the work is split, so the Beam stage
(``pipelines/near_stages.py``), which splits the first table level across workers and runs this same
search inside each group, gives the same losers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

PHASH_BITS = 64
TARGET_BUCKET = 4  # expected hashes per table key on spread-out data
RUN_LIMIT = 64  # runs of equal keys above this are searched again on their remaining bits
BRUTE_LIMIT = 96  # sets this small are scanned directly
BRUTE_BLOCK = 256  # better hashes compared per step of the ordered scan
MAX_TABLES = 1000
NO_WINNER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class TablePlan:
    """``C(blocks, keep)`` tables over the free bits; ``masks[t]`` selects table ``t``'s key bits."""

    radius: int
    blocks: int
    keep: int
    key_bits: int
    masks: tuple[int, ...]

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


def make_plan(radius: int, blocks: int, fixed_mask: int = 0) -> TablePlan:
    """The tables of ``blocks`` blocks over the bits outside ``fixed_mask`` (needs ``blocks > radius``)."""
    bits = free_bits(fixed_mask)
    if not 0 <= radius < blocks <= len(bits):
        raise ValueError(
            f"need 0 <= radius < blocks <= {len(bits)} free bits (radius={radius}, blocks={blocks})"
        )
    keep = blocks - radius
    block = block_masks(bits, blocks)
    masks = tuple(sum(block[i] for i in chosen) for chosen in combinations(range(blocks), keep))
    key_bits = min(mask.bit_count() for mask in masks)
    return TablePlan(radius, blocks, keep, key_bits, masks)


def plan_tables(
    radius: int, n: int, fixed_mask: int = 0, target_bucket: float = TARGET_BUCKET
) -> TablePlan | None:
    """The fewest tables whose keys are shared by at most ``target_bucket`` of ``n`` spread-out hashes.

    ``None`` when no plan within ``MAX_TABLES`` has a key of at least one bit (too few free bits).
    When none reaches the target, the plan with the most key bits within ``MAX_TABLES``.
    """
    free = len(free_bits(fixed_mask))
    best = None
    for blocks in range(radius + 1, free + 1):
        if math.comb(blocks, blocks - radius) > MAX_TABLES:
            break
        plan = make_plan(radius, blocks, fixed_mask)
        if plan.key_bits == 0:
            continue
        if best is None or plan.key_bits > best.key_bits:
            best = plan
        if n / 2**plan.key_bits <= target_bucket:
            return plan
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
        for mask in plan.masks:
            self.table(members, mask, fixed_mask, depth)

    def table(self, members: np.ndarray, mask: int, fixed_mask: int, depth: int) -> None:
        """Pairs inside every run of equal keys of one table; large runs are searched again."""
        keys = self.hashes[members] & np.uint64(mask)
        perm = members[np.argsort(keys, kind="stable")]
        self.stats.sorted_keys += len(members)
        sorted_keys = self.hashes[perm] & np.uint64(mask)
        starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
        sizes = np.diff(np.append(starts, len(perm)))
        run_of = np.repeat(np.arange(len(starts)), sizes)
        position = np.arange(len(perm)) - starts[run_of]
        size_of = sizes[run_of]
        small = (size_of >= 2) & (size_of <= RUN_LIMIT)
        if small.any():  # every pair inside every small run, built in one go
            self.stats.largest_unit = max(self.stats.largest_unit, int(size_of[small].max()))
            after = np.where(small, size_of - 1 - position, 0)  # partners later in the same run
            total = int(after.sum())
            first = np.repeat(np.arange(len(perm)), after)
            step = np.arange(total) - np.repeat(np.cumsum(after) - after, after) + 1
            a, b = perm[first], perm[first + step]
            near = np.bitwise_count(self.hashes[a] ^ self.hashes[b]) <= self.radius
            self.stats.checks += total
            if near.any():
                _offer(self.best, self.order, a[near], b[near])
        for start, size in zip(starts[sizes > RUN_LIMIT], sizes[sizes > RUN_LIMIT], strict=True):
            self.run(perm[start : start + size], fixed_mask | mask, depth + 1)

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
    search.run(np.arange(len(hashes)), fixed_mask, 0)
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
