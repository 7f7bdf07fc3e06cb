"""KeepBestPerKey: per group key, the best candidate survives and every other one loses — with no hot key.

A plain ``GroupByKey`` on sha256 puts every copy of a viral image (10⁶ copies of one meme is ordinary on
the web) into one value that one worker must hold and walk. Here:

1. ``CombinePerKey`` computes (count, best) per key; Beam lifts the combine before the shuffle, so each
   worker sends one accumulator per key, never the copies.
2. Keys with more than ``max_group`` members ("heavy hitters"; at most n / ``max_group`` of them) travel
   as a small side input ``{key: best}``; their members are decided one by one in a ``ParDo``.
3. Only light keys (≤ ``max_group`` members, so a bounded group) go through ``GroupByKey`` and are
   decided inside the group.

Both paths pick the same survivor (``filters.dedup.survivor_rank``: the same order everywhere), so the
outcome does not depend on which path a key takes, on bundle order or on worker count.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam

from filters.dedup import DEFAULT_DEDUP, survivor_rank

Candidate = tuple[str, str, int, int]  # key, phash, original_width, original_height
Loser = tuple[str, tuple[str, str]]  # sample key, (reason, detail)


def _rank(candidate: Candidate) -> tuple:
    return survivor_rank(candidate[0], candidate[2], candidate[3])


class CountAndBest(beam.CombineFn):
    """(members, best member) of one key; associative and commutative, so safe to lift and re-merge."""

    def create_accumulator(self) -> tuple[int, Candidate | None]:
        return 0, None

    def add_input(self, accumulator: tuple[int, Candidate | None], candidate: Candidate):
        count, best = accumulator
        return count + 1, candidate if best is None or _rank(candidate) < _rank(best) else best

    def merge_accumulators(self, accumulators: Iterable[tuple[int, Candidate | None]]):
        total, best = 0, None
        for count, candidate in accumulators:
            total += count
            if candidate is not None and (best is None or _rank(candidate) < _rank(best)):
                best = candidate
        return total, best

    def extract_output(self, accumulator: tuple[int, Candidate | None]):
        return accumulator


def group_size_metric(name: str):
    """The Beam distribution of group sizes that a grouped step records (namespace ``dedup``)."""
    return beam.metrics.Metrics.distribution("dedup", name)


def _loser(candidate: Candidate, best: Candidate, reason: str, detail: str) -> beam.pvalue.TaggedOutput:
    return beam.pvalue.TaggedOutput("losers", (candidate[0], (reason, detail.format(best=best[0]))))


class _DecideHeavy(beam.DoFn):
    """Members of heavy keys against their key's best; members of light keys pass on for grouping."""

    def __init__(self, reason: str, detail: str) -> None:
        self._reason, self._detail = reason, detail

    def process(self, item: tuple[str, Candidate], heavy: dict[str, Candidate]) -> Iterator:
        key, candidate = item
        best = heavy.get(key)
        if best is None:
            yield beam.pvalue.TaggedOutput("light", item)
        elif candidate[0] == best[0]:
            yield candidate
        else:
            yield _loser(candidate, best, self._reason, self._detail)


def _decide_light(item: tuple[str, Iterable[Candidate]], reason: str, detail: str, metric) -> Iterator:
    _, members = item
    members = list(members)
    metric.update(len(members))  # the largest unit of work: bounded by max_group whatever the data
    best = min(members, key=_rank)
    for candidate in members:
        yield candidate if candidate[0] == best[0] else _loser(candidate, best, reason, detail)


class KeepBestPerKey(beam.PTransform):
    """``(group key, candidate)`` → ``(survivors, losers)``; losers are ``(sample key, (reason, detail))``.

    ``detail`` may name the survivor as ``{best}``. Group sizes go to the Beam distribution
    ``dedup/<metric>`` (its max is the largest group any worker had to hold).
    """

    def __init__(
        self, reason: str, detail: str, metric: str, max_group: int = DEFAULT_DEDUP.max_group
    ) -> None:
        super().__init__()
        if max_group < 1:
            raise ValueError(f"max_group must be at least 1, got {max_group}")
        self._reason, self._detail, self._max_group = reason, detail, max_group
        self._metric = metric

    def expand(self, keyed: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        max_group = self._max_group
        heavy = (
            keyed
            | "CountAndBest" >> beam.CombinePerKey(CountAndBest())
            | "HeavyKeys" >> beam.Filter(lambda kv: kv[1][0] > max_group)
            | "BestOfHeavy" >> beam.Map(lambda kv: (kv[0], kv[1][1]))
        )
        split = keyed | "DecideHeavy" >> beam.ParDo(
            _DecideHeavy(self._reason, self._detail), heavy=beam.pvalue.AsDict(heavy)
        ).with_outputs("light", "losers", main="survivors")
        light = (
            split.light
            | "GroupLight" >> beam.GroupByKey()
            | "DecideLight"
            >> beam.FlatMap(
                _decide_light, self._reason, self._detail, group_size_metric(self._metric)
            ).with_outputs("losers", main="survivors")
        )
        survivors = (split.survivors, light.survivors) | "Survivors" >> beam.Flatten()
        losers = (split.losers, light.losers) | "Losers" >> beam.Flatten()
        return survivors, losers
