"""FindNearDuplicates: pHashes within a radius across the whole dataset, with bounded units of work.

The in-memory search (``filters.near_search``) splits hashes by block-combination tables; here the
first level of those tables becomes the shuffle key, and the rest of the search runs inside each group:

1. ``Count`` the distinct hashes (``n``) and pick the level-1 plan from it (``level_one_plan``): the
   fewest tables whose keys are shared by at most ``target_group`` of ``n`` spread-out hashes. Each hash
   is emitted once per table, keyed ``(keep, table, masked value)``.
2. A combiner counts every key; keys with more than ``max_group`` members (skewed data: a dense cluster
   of near copies) are split into salted chunks of ``max_group // 3`` on average and every pair of
   chunks is one unit: two chunks average 2/3 of ``max_group``, and exceeding it takes a chunk ~9
   standard deviations above its mean at ``max_group`` = 1000, so units stay bounded whatever the data.
3. Inside a unit, ``near_losers`` over the bits the key did not fix, in the global survivor order.

Every pair within the radius shares a level-1 key (pigeonhole), and every pair in a key shares a unit,
so the losers are exactly those of ``near_losers`` over all hashes at once, whatever the split, bundle
order or worker count. A loser found in several units keeps the smallest detail string.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator
from functools import lru_cache

import apache_beam as beam
import numpy as np

from filters.dedup import NEAR_DUPLICATE
from filters.near_search import NO_WINNER, TablePlan, make_plan, near_losers

Point = tuple[str, int, int]  # sample key, pHash as a signed 64-bit int (Beam's int coder), original pixels
TARGET_GROUP = 512
MAX_GROUP = 1000
UNSIGNED = (1 << 64) - 1


@lru_cache(maxsize=64)
def _plan(radius: int, keep: int) -> TablePlan:
    return make_plan(radius, radius + keep)


def level_one_plan(radius: int, n: int, target_group: int = TARGET_GROUP) -> TablePlan:
    """The fewest level-1 tables whose keys hold at most ``target_group`` of ``n`` spread-out hashes."""
    keep = 1
    while n / 2 ** _plan(radius, keep).key_bits > target_group and radius + keep < 64 and keep < 4:
        keep += 1
    return _plan(radius, keep)


def as_signed(value: int) -> int:
    """A 64-bit pattern as the signed int Beam's VarIntCoder carries (it refuses ints >= 2**63)."""
    value &= UNSIGNED
    return value - (1 << 64) if value >> 63 else value


def _table_keys(point: Point, radius: int, n: int, target_group: int) -> Iterator[tuple[tuple, Point]]:
    plan = level_one_plan(radius, n, target_group)
    for table, mask in enumerate(plan.masks):
        yield (plan.keep, table, as_signed(point[1] & mask)), point


def _salt(key: str, chunks: int) -> int:
    return zlib.crc32(key.encode()) % chunks  # stable across processes, unlike hash()


class _ToUnits(beam.DoFn):
    """Light keys are one unit; a heavy key's chunk c joins units (min(c, j), max(c, j)) for every j."""

    def __init__(self, max_group: int) -> None:
        self._chunk = max(1, max_group // 3)

    def process(self, item: tuple[tuple, Point], heavy: dict[tuple, int]) -> Iterator:
        key, point = item
        count = heavy.get(key)
        if count is None:
            yield (*key, 0, 0), point
            return
        chunks = math.ceil(count / self._chunk)
        mine = _salt(point[0], chunks)
        for other in range(chunks):
            yield (*key, min(mine, other), max(mine, other)), point


def _search_unit(item: tuple[tuple, Iterable[Point]], radius: int, metric) -> Iterator:
    """Losers of one unit: ``near_losers`` on the bits its table did not fix, in survivor order."""
    (keep, table, *_), points = item
    points = sorted(points, key=lambda p: (-p[2], p[0]))  # filters.dedup.survivor_rank
    metric.update(len(points))
    if len(points) < 2:
        return
    hashes = np.array([p[1] for p in points], dtype=np.int64).view(np.uint64)
    order = np.arange(len(points), dtype=np.int64)
    winners = near_losers(hashes, order, radius, fixed_mask=_plan(radius, keep).masks[table])
    for index in np.flatnonzero(winners != NO_WINNER):
        loser, winner = points[index], points[winners[index]]
        distance = ((loser[1] ^ winner[1]) & UNSIGNED).bit_count()
        yield loser[0], (NEAR_DUPLICATE, f"near {winner[0]} (pHash distance {distance})")


class FindNearDuplicates(beam.PTransform):
    """``(sample key, signed pHash int, pixels)``, distinct pHashes → ``(loser key, (reason, detail))``.

    Unit sizes go to the Beam distribution ``dedup/near_unit``; its max is bounded by ``max_group``.
    """

    def __init__(self, radius: int, max_group: int = MAX_GROUP, target_group: int = TARGET_GROUP) -> None:
        super().__init__()
        if max_group < 2 or target_group < 1:
            raise ValueError(f"need max_group >= 2 and target_group >= 1 (got {max_group}, {target_group})")
        self._radius, self._max_group, self._target_group = radius, max_group, target_group

    def expand(self, points: beam.PCollection) -> beam.PCollection:
        radius, max_group = self._radius, self._max_group
        total = points | "CountHashes" >> beam.combiners.Count.Globally()
        keyed = points | "TableKeys" >> beam.FlatMap(
            _table_keys, radius, beam.pvalue.AsSingleton(total), self._target_group
        )
        heavy = (
            keyed
            | "KeySizes" >> beam.combiners.Count.PerKey()
            | "HeavyKeys" >> beam.Filter(lambda kv: kv[1] > max_group)
        )
        metric = beam.metrics.Metrics.distribution("dedup", "near_unit")
        return (
            keyed
            | "ToUnits" >> beam.ParDo(_ToUnits(max_group), heavy=beam.pvalue.AsDict(heavy))
            | "GroupUnits" >> beam.GroupByKey()
            | "SearchUnits" >> beam.FlatMap(_search_unit, radius, metric)
            | "SmallestDetail" >> beam.CombinePerKey(min)  # lifted: one verdict per loser leaves a worker
        )
