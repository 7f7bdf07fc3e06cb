"""Deduplicate: eval-set blocklist, images with too many alt-texts, exact and near duplicates.

Only light records reach this stage (``SplitPayloads`` took the JPEGs aside), and the groupings move
small tuples, never records:

* eval blocklist: a per-record lookup; the blocklist is loaded once per worker process.
* >1000 alt-texts: distinct (sha256, caption) pairs counted per sha256 with lifted combines.
* exact: ``(sha256, candidate)`` → ``KeepBestPerKey`` (combiner + heavy-hitter side input, so 10⁶
  copies of one image are never one group; ``pipelines/best_per_key.py``); the others lose.
* equal pHash: the same on the exact survivors keyed by pHash (they lose as near duplicates at
  distance 0), so identical-looking images never pile into one band group either.
* near: the distinct pHashes left go through ``FindNearDuplicates`` (``pipelines/near_stages.py``:
  block-combination tables as shuffle keys, bounded units, exact distance checks). A record loses when
  ANY better image lies within the radius, so no two kept images are near duplicates and the outcome
  depends only on the images, never on bundle order or worker count; ``filters.dedup.reference_losers``
  computes the same losers in memory.

Losers meet their records in one CoGroupByKey on the (unique) sample key.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from filters.decision import Reject
from filters.dedup import (
    EVAL_DUPLICATE,
    EXACT_DUPLICATE,
    NEAR_DUPLICATE,
    DedupConfig,
    check_alt_text_count,
)
from filters.eval_blocklist import EvalBlocklist
from pipelines.best_per_key import Candidate, KeepBestPerKey
from pipelines.files import FileCache
from pipelines.near_stages import FindNearDuplicates
from pipelines.near_units import as_signed
from pipelines.records import REJECTS, Record
from pipelines.rule_stage import RoutingDoFn, RuleStage, apply_rule_stage
from pipelines.text_stages import caption_digest

STAGE = "dedup"
_BLOCKLISTS = FileCache()


def load_blocklist(path: str, radius: int) -> EvalBlocklist:
    """The blocklist at ``path`` (local or remote), loaded once per worker process and shared by threads."""
    return _BLOCKLISTS.get(path, (radius,), lambda local: EvalBlocklist.load(local, radius))


class _DropEvalDuplicates(RuleStage):
    stage, counts_kept = STAGE, False  # the stage's last step counts what dedup keeps

    def __init__(self, path: str, config: DedupConfig) -> None:
        self._path = path
        self._config = config
        self._blocklist: EvalBlocklist | None = None

    def setup(self) -> None:
        self._blocklist = load_blocklist(self._path, self._config.radius)

    def judge(self, record: Record) -> Record | Reject:
        match = self._blocklist.find(record["sha256"], record["phash"])
        if match is not None:
            return Reject(EVAL_DUPLICATE, f"matches evaluation image {match.source}")
        return record


class _DropManyAltTexts(RuleStage):
    stage, counts_kept = STAGE, False

    def __init__(self, max_alt_texts: int) -> None:
        self._max = max_alt_texts

    def judge(self, record: Record, crowded: dict[str, int]) -> Record | Reject:
        count = crowded.get(record["sha256"], 0)
        reason = check_alt_text_count(count, self._max)
        return record if reason is None else Reject(reason, f"image has {count} distinct alt-texts")


def _candidate(record: Record) -> tuple[str, Candidate]:
    return record["sha256"], (
        record["key"],
        record["phash"],
        record["original_width"],
        record["original_height"],
    )


class _KeepAll(RuleStage):
    """``--dedup none``: what the earlier steps kept is what the stage keeps (counted here)."""

    stage = STAGE

    def judge(self, record: Record) -> Record:
        return record


class _ApplyLosers(RoutingDoFn):
    """A record joined with its losing verdicts (the smallest reason and detail wins), or kept."""

    stage = STAGE

    def process(self, item: tuple[str, dict[str, list]]) -> Iterator:
        _, grouped = item
        verdicts = grouped["loser"]
        for record in grouped["record"]:
            yield self.route(record, Reject(*min(verdicts)) if verdicts else record)


class Deduplicate(beam.PTransform):
    """Light records with ``sha256``/``phash``/original sizes → ``(kept, rejects)``; stage ``dedup``."""

    stage = STAGE  # its name in the funnel (job.build reads it)

    def __init__(
        self, config: DedupConfig, blocklist_path: str | None = None, level_one_target: float | None = None
    ) -> None:
        super().__init__()
        self._config = config
        self._blocklist_path = blocklist_path
        self._level_one_target = (
            level_one_target  # default: from max_group; benchmarks vary it to price a table
        )

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        config = self._config
        rejects = []
        if self._blocklist_path:
            rule = _DropEvalDuplicates(self._blocklist_path, config)
            records, dropped = apply_rule_stage(records, "DropEvalDuplicates", rule)
            rejects.append(dropped)

        crowded = (
            records
            | "ImageCaption" >> beam.Map(lambda r: (r["sha256"], caption_digest(r["caption"])))
            | "DistinctImageCaptions" >> beam.Distinct()
            | "ImageOnly" >> beam.Keys()
            | "AltTextsPerImage" >> beam.combiners.Count.PerElement()
            | "OverLimit"
            >> beam.Filter(lambda kv: check_alt_text_count(kv[1], config.max_alt_texts) is not None)
        )
        rule = _DropManyAltTexts(config.max_alt_texts)
        records, dropped = apply_rule_stage(
            records, "DropManyAltTexts", rule, crowded=beam.pvalue.AsDict(crowded)
        )
        rejects.append(dropped)

        if config.mode == "none":  # ALIGN: no general image dedup
            kept, _ = apply_rule_stage(records, "CountKept", _KeepAll())
            return kept, rejects | "FlattenDedupRejects" >> beam.Flatten()
        exact_survivors, exact_losers = (
            records
            | "BySha256" >> beam.Map(_candidate)
            | "ExactDuplicates"
            >> KeepBestPerKey(EXACT_DUPLICATE, "same image as {best}", "sha256_group", config.max_group)
        )
        losers = [exact_losers]
        if config.mode == "near":
            distinct_survivors, equal_losers = (
                exact_survivors
                | "ByPhash" >> beam.Map(lambda candidate: (candidate[1], candidate))
                | "EqualPhashes"
                >> KeepBestPerKey(
                    NEAR_DUPLICATE, "near {best} (pHash distance 0)", "phash_group", config.max_group
                )
            )
            near_losers = (
                distinct_survivors
                | "AsPoints" >> beam.Map(lambda c: (c[0], as_signed(int(c[1], 16)), c[2] * c[3]))
                | "NearDuplicates"
                >> FindNearDuplicates(config.radius, config.max_group, self._level_one_target)
            )
            losers += [equal_losers, near_losers]
        losers = losers | "AllLosers" >> beam.Flatten()
        applied = (
            {"record": records | "ByKey" >> beam.Map(lambda r: (r["key"], r)), "loser": losers}
            | "JoinLosers" >> beam.CoGroupByKey()
            | "ApplyLosers" >> beam.ParDo(_ApplyLosers()).with_outputs(REJECTS, main="kept")
        )
        rejects.append(applied[REJECTS])
        return applied.kept, rejects | "FlattenDedupRejects" >> beam.Flatten()
