"""Deduplicate: eval-set blocklist, images with too many alt-texts, exact and near duplicates.

Only light records reach this stage (``SplitPayloads`` took the JPEGs aside), and the groupings move
small tuples, never records:

* eval blocklist: a per-record lookup; the blocklist is loaded once per worker process.
* >1000 alt-texts: distinct (sha256, caption) pairs counted per sha256 with lifted combines.
* exact: ``(sha256, candidate)`` → GroupByKey → ``choose_survivor``; the others lose.
* near: each exact survivor emits its ``band_keys`` → GroupByKey → ``bucket_pairs`` (exact Hamming
  check) → in every pair within the radius the worse image loses. A record loses when ANY better image
  lies within the radius, so no two kept images are near duplicates and the outcome depends only on
  the images, never on bundle order. It equals ``filters.dedup``'s connected-component reference when
  near-duplicate groups are cliques (re-encodes, resizes of one picture); in a chain A~B~C with A~C
  apart it may drop one image more than the reference, which needs an iterative graph algorithm.

Losers meet their records in one CoGroupByKey on the (unique) sample key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import apache_beam as beam

from filters.dedup import (
    EVAL_DUPLICATE,
    EXACT_DUPLICATE,
    NEAR_DUPLICATE,
    DedupCandidate,
    DedupConfig,
    band_keys,
    bucket_pairs,
    check_alt_text_count,
    choose_survivor,
    hamming,
)
from filters.eval_blocklist import EvalBlocklist
from pipelines.files import local_copy
from pipelines.records import REJECTS, Record, count_kept, make_reject
from pipelines.text_stages import caption_digest

STAGE = "dedup"
_BLOCKLISTS: dict[tuple[str, int], EvalBlocklist] = {}
_BLOCKLISTS_LOCK = threading.Lock()

Candidate = tuple[str, str, int, int]  # key, phash, original_width, original_height


def load_blocklist(path: str, bands: int) -> EvalBlocklist:
    """The blocklist at ``path`` (local or remote), loaded once per worker process and shared by threads."""
    with _BLOCKLISTS_LOCK:
        if (path, bands) not in _BLOCKLISTS:
            with local_copy(path) as local:  # EvalBlocklist reads local files only
                _BLOCKLISTS[path, bands] = EvalBlocklist.load(local, bands)
        return _BLOCKLISTS[path, bands]


def _reject(record: Record, reason: str, detail: str = "") -> beam.pvalue.TaggedOutput:
    return beam.pvalue.TaggedOutput(REJECTS, make_reject(record, STAGE, reason, detail))


class _DropEvalDuplicates(beam.DoFn):
    def __init__(self, path: str, config: DedupConfig) -> None:
        self._path = path
        self._config = config
        self._blocklist: EvalBlocklist | None = None

    def setup(self) -> None:
        self._blocklist = load_blocklist(self._path, self._config.bands)

    def process(self, record: Record) -> Iterator:
        match = self._blocklist.find(record["sha256"], record["phash"], self._config.radius)
        if match is not None:
            yield _reject(record, EVAL_DUPLICATE, f"matches evaluation image {match.source}")
        else:
            yield record


class _DropManyAltTexts(beam.DoFn):
    def __init__(self, max_alt_texts: int) -> None:
        self._max = max_alt_texts

    def process(self, record: Record, crowded: dict[str, int]) -> Iterator:
        count = crowded.get(record["sha256"], 0)
        reason = check_alt_text_count(count, self._max)
        if reason is not None:
            yield _reject(record, reason, f"image has {count} distinct alt-texts")
        else:
            yield record


def _candidate(record: Record) -> tuple[str, Candidate]:
    return record["sha256"], (
        record["key"],
        record["phash"],
        record["original_width"],
        record["original_height"],
    )


def _as_dedup(candidate: Candidate) -> DedupCandidate:
    return DedupCandidate(key=candidate[0], original_width=candidate[2], original_height=candidate[3])


def _exact_groups(item: tuple[str, Iterable[Candidate]]) -> Iterator:
    """The survivor of one sha256 group on the main output; every other member as a loser."""
    _, members = item
    members = list(members)
    survivor = choose_survivor([_as_dedup(m) for m in members]).key
    for member in members:
        if member[0] == survivor:
            yield member
        else:
            yield beam.pvalue.TaggedOutput(
                "losers", (member[0], (EXACT_DUPLICATE, f"same image as {survivor}"))
            )


def _bands(candidate: Candidate, bands: int) -> Iterator[tuple[tuple[int, str], Candidate]]:
    for band in band_keys(candidate[1], bands):
        yield band, candidate


def _near_losers(item: tuple[tuple[int, str], Iterable[Candidate]], radius: int) -> Iterator:
    """In one band group, the worse image of every pair within ``radius`` loses to the better one."""
    _, members = item
    by_key = {m[0]: m for m in members}
    if len(by_key) < 2:
        return
    for key_a, key_b in bucket_pairs([(key, m[1]) for key, m in by_key.items()], radius):
        a, b = by_key[key_a], by_key[key_b]
        winner = choose_survivor([_as_dedup(a), _as_dedup(b)]).key
        loser = b if winner == key_a else a
        distance = hamming(a[1], b[1])
        yield loser[0], (NEAR_DUPLICATE, f"near {winner} (pHash distance {distance})")


def _apply_losers(item: tuple[str, dict[str, list]]) -> Iterator:
    _, grouped = item
    verdicts = grouped["loser"]
    for record in grouped["record"]:
        if verdicts:
            reason, detail = min(verdicts)
            yield _reject(record, reason, detail)
        else:
            count_kept(STAGE)
            yield record


class Deduplicate(beam.PTransform):
    """Light records with ``sha256``/``phash``/original sizes → ``(kept, rejects)``; stage ``dedup``."""

    def __init__(self, config: DedupConfig, blocklist_path: str | None = None) -> None:
        super().__init__()
        self._config = config
        self._blocklist_path = blocklist_path

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        config = self._config
        rejects = []
        if self._blocklist_path:
            checked = records | "DropEvalDuplicates" >> beam.ParDo(
                _DropEvalDuplicates(self._blocklist_path, config)
            ).with_outputs(REJECTS, main="kept")
            records = checked.kept
            rejects.append(checked[REJECTS])

        crowded = (
            records
            | "ImageCaption" >> beam.Map(lambda r: (r["sha256"], caption_digest(r["caption"])))
            | "DistinctImageCaptions" >> beam.Distinct()
            | "ImageOnly" >> beam.Keys()
            | "AltTextsPerImage" >> beam.combiners.Count.PerElement()
            | "OverLimit"
            >> beam.Filter(lambda kv: check_alt_text_count(kv[1], config.max_alt_texts) is not None)
        )
        checked = records | "DropManyAltTexts" >> beam.ParDo(
            _DropManyAltTexts(config.max_alt_texts), crowded=beam.pvalue.AsDict(crowded)
        ).with_outputs(REJECTS, main="kept")
        records = checked.kept
        rejects.append(checked[REJECTS])

        exact = (
            records
            | "BySha256" >> beam.Map(_candidate)
            | "GroupSha256" >> beam.GroupByKey()
            | "ExactSurvivors" >> beam.FlatMap(_exact_groups).with_outputs("losers", main="survivors")
        )
        near_losers = (
            exact.survivors
            | "BandKeys" >> beam.FlatMap(_bands, config.bands)
            | "GroupBands" >> beam.GroupByKey()
            | "NearPairs" >> beam.FlatMap(_near_losers, config.radius)
        )
        losers = (exact.losers, near_losers) | "AllLosers" >> beam.Flatten()
        applied = (
            {"record": records | "ByKey" >> beam.Map(lambda r: (r["key"], r)), "loser": losers}
            | "JoinLosers" >> beam.CoGroupByKey()
            | "ApplyLosers" >> beam.FlatMap(_apply_losers).with_outputs(REJECTS, main="kept")
        )
        rejects.append(applied[REJECTS])
        return applied.kept, rejects | "FlattenDedupRejects" >> beam.Flatten()
