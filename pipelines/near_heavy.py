"""SearchHeavyKeys: a level-1 table key with more members than one unit may hold, searched in bounded units.

A heavy key comes from skewed data, typically a dense cluster of near copies of one viral image (the
level-1 plan keeps spread-out keys near 0.6 · ``max_group``). Splitting it into chunks and comparing every
pair of chunks would be exact but quadratic in the key's size, so it goes in two passes, the Beam
form of the in-memory search's ordered scan with an early exit:

1. **Against the best.** ``Top.SmallestPerKey`` (a lifted combiner) finds the key's
   ``max_group // 3`` best members. Each salted chunk of members is one unit together with those best: a member with a better
   one within the radius in its chunk or among the best loses. The best are decided completely here
   (every better member of one of them is itself among the best). In a dense cluster nearly every
   member loses to one of the best, so this pass is linear in the key's size.
2. **What is left.** The members that found no winner ("open") are compared with every member of
   the key: each chunk of open members meets each chunk of members in one unit. Its cost is
   open × members, small when pass 1 settled the key; in the worst case (a heavy key of hashes far
   apart) it is the chunk-pair search, still with no unit over ``max_group``.

The losers are exact: a member that is not among the best either meets a better neighbour in pass 1
or is open and meets every better member of its key in pass 2.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator

import apache_beam as beam

from pipelines.best_per_key import group_size_metric
from pipelines.near_units import Point, rank, unit_losers


def salt(key: str, chunks: int) -> int:
    return zlib.crc32(key.encode()) % chunks  # stable across processes, unlike hash()


def chunks_of(count: int, chunk: int) -> int:
    return max(1, math.ceil(count / chunk))


class _BestForEachChunk(beam.DoFn):
    def __init__(self, chunk: int) -> None:
        self._chunk = chunk

    def process(self, item: tuple[tuple, list[Point]], heavy: dict[tuple, int]) -> Iterator:
        key, best = item
        for chunk in range(chunks_of(heavy[key], self._chunk)):
            yield (*key, chunk), best


def _chunked(item: tuple[tuple, Point], heavy: dict[tuple, int], chunk: int) -> tuple[tuple, Point]:
    key, point = item
    return (*key, salt(point[0], chunks_of(heavy[key], chunk))), point


class _AgainstTheBest(beam.DoFn):
    """One chunk with the key's best: losers, and the members with no winner that are not among the best."""

    def __init__(self, radius: int) -> None:
        self._radius = radius
        self._metric = group_size_metric("near_unit")

    def process(self, item: tuple[tuple, dict[str, list]]) -> Iterator:
        (*key, _chunk), grouped = item
        best = [point for points in grouped["best"] for point in points]
        best_keys = {point[0] for point in best}
        members = list(grouped["members"])
        union = best + [point for point in members if point[0] not in best_keys]
        self._metric.update(len(union))
        found = dict(unit_losers(union, key[0], key[1], self._radius))
        for point in union:  # the best appear in every unit; CombinePerKey(min) downstream keeps one verdict
            if point[0] in found:
                yield point[0], found[point[0]]
            elif point[0] not in best_keys:
                yield beam.pvalue.TaggedOutput("open", (tuple(key), point))


class _OpenMeetsMembers(beam.DoFn):
    """Open chunk ``o`` of a key meets member chunk ``m`` in unit ``(key, o, m)``."""

    def __init__(self, chunk: int, side: str) -> None:
        self._chunk, self._side = chunk, side

    def process(
        self, item: tuple[tuple, Point], heavy: dict[tuple, int], opens: dict[tuple, int]
    ) -> Iterator:
        key, point = item
        if key not in opens:
            return
        open_chunks, member_chunks = chunks_of(opens[key], self._chunk), chunks_of(heavy[key], self._chunk)
        if self._side == "open":
            mine = salt(point[0], open_chunks)
            for other in range(member_chunks):
                yield (*key, mine, other), (self._side, point)
        else:
            mine = salt(point[0], member_chunks)
            for other in range(open_chunks):
                yield (*key, other, mine), (self._side, point)


def _open_losers(item: tuple[tuple, Iterable[tuple[str, Point]]], radius: int, metric) -> Iterator:
    (keep, table, *_), tagged = item
    tagged = list(tagged)
    opens = {point[0] for side, point in tagged if side == "open"}
    union = list({point[0]: point for _, point in tagged}.values())
    metric.update(len(union))
    for loser, verdict in unit_losers(union, keep, table, radius):
        if loser in opens:
            yield loser, verdict


class SearchHeavyKeys(beam.PTransform):
    """``((keep, table, value), point)`` of heavy keys → losers ``(key, (reason, detail))``, in bounded units."""

    def __init__(self, radius: int, max_group: int, heavy: beam.pvalue.AsSideInput) -> None:
        super().__init__()
        self._radius, self._heavy = radius, heavy
        self._chunk = max(
            1, max_group // 3
        )  # a unit: a chunk and the best, or two chunks (~2/3 of max_group)

    def expand(self, members: beam.PCollection) -> beam.PCollection:
        radius, chunk, heavy = self._radius, self._chunk, self._heavy
        best = members | "BestOfKey" >> beam.combiners.Top.SmallestPerKey(chunk, key=rank)
        first = (
            {
                "members": members | "MemberChunks" >> beam.Map(_chunked, heavy, chunk),
                "best": best | "BestForEachChunk" >> beam.ParDo(_BestForEachChunk(chunk), heavy),
            }
            | "GroupChunks" >> beam.CoGroupByKey()
            | "AgainstTheBest" >> beam.ParDo(_AgainstTheBest(radius)).with_outputs("open", main="losers")
        )
        opens = first.open | "CountOpen" >> beam.combiners.Count.PerKey()
        open_side = beam.pvalue.AsDict(opens)
        second = (
            (
                first.open | "OpenChunks" >> beam.ParDo(_OpenMeetsMembers(chunk, "open"), heavy, open_side),
                members
                | "MembersForOpen" >> beam.ParDo(_OpenMeetsMembers(chunk, "member"), heavy, open_side),
            )
            | "FlattenOpenUnits" >> beam.Flatten()
            | "GroupOpenUnits" >> beam.GroupByKey()
            | "OpenLosers" >> beam.FlatMap(_open_losers, radius, group_size_metric("near_unit"))
        )
        return (first.losers, second) | "HeavyLosers" >> beam.Flatten()
