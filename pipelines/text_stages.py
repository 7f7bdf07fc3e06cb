"""Text stages: CleanText (normalise + ALIGN's alt-text rules + rare tokens) and DropSharedAltTexts.

Both global counts run as combines with lifting (``Count.PerElement``, ``Top``), so a head token or
an alt-text shared by millions of pages ("click here") never becomes a hot key, and the records
themselves are never shuffled: the counts reach them as side inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from filters.decision import Reject
from filters.rare_tokens import TokenFrequencyTable, check_rare_tokens, text_ngrams
from filters.text import TextRules, check_alt_text_shared, check_caption, normalize_text, words
from pipelines.records import Record
from pipelines.rule_stage import RuleStage, apply_rule_stage

TEXT_STAGE = "text"
SHARED_STAGE = "shared_alt_text"
_UNIGRAM, _BIGRAM = "u", "b"


def load_token_table(path: str) -> TokenFrequencyTable:
    """A saved ``TokenFrequencyTable`` read through FileSystems (local, gs://, s3://)."""
    with FileSystems.open(path) as handle:
        return TokenFrequencyTable.from_json(json.loads(handle.read().decode("utf-8")))


def _normalised(record: Record) -> Record:
    return {**record, "caption": normalize_text(record.get("caption"))}


def _ngrams(record: Record) -> Iterator[tuple[str, str]]:
    unigrams, bigrams = text_ngrams(record["caption"])
    yield from ((_UNIGRAM, token) for token in unigrams)
    yield from ((_BIGRAM, token) for token in bigrams)


def _table(
    tops: list[tuple[str, list[tuple[int, str]]]], top_unigrams: int, top_bigrams: int
) -> TokenFrequencyTable:
    counts: dict[str, dict[str, int]] = {_UNIGRAM: {}, _BIGRAM: {}}
    for kind, ranked in tops:
        counts[kind] = {token: -negative for negative, token in ranked}
    return TokenFrequencyTable.from_counts(counts[_UNIGRAM], counts[_BIGRAM], top_unigrams, top_bigrams)


class CountTokenFrequencies(beam.PTransform):
    """Normalised records → a one-element PCollection holding the pool's ``TokenFrequencyTable``.

    Document frequencies per n-gram (``Count.PerElement``), then the top K per kind as the smallest
    ``(-count, token)``: the same ranking ``TokenFrequencyTable.from_counts`` uses, ties by string.
    """

    def __init__(self, top_unigrams: int, top_bigrams: int) -> None:
        super().__init__()
        self._top = {_UNIGRAM: top_unigrams, _BIGRAM: top_bigrams}

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        top_unigrams, top_bigrams = self._top[_UNIGRAM], self._top[_BIGRAM]
        ranked = (
            records
            | "NGrams" >> beam.FlatMap(_ngrams)
            | "DocumentFrequency" >> beam.combiners.Count.PerElement()
            | "ByKind" >> beam.MapTuple(lambda ngram, count: (ngram[0], (-count, ngram[1])))
        )
        unigrams = (
            ranked
            | "Unigrams" >> beam.Filter(lambda kv: kv[0] == _UNIGRAM)
            | "TopUnigrams" >> beam.combiners.Top.SmallestPerKey(max(top_unigrams, 1))
        )
        bigrams = (
            ranked
            | "Bigrams" >> beam.Filter(lambda kv: kv[0] == _BIGRAM)
            | "TopBigrams" >> beam.combiners.Top.SmallestPerKey(max(top_bigrams, 1))
        )
        return (
            (unigrams, bigrams)
            | "BothKinds" >> beam.Flatten()
            | "Gather" >> beam.combiners.ToList()
            | "Table" >> beam.Map(_table, top_unigrams, top_bigrams)
        )


class _CheckCaption(RuleStage):
    """ALIGN's junk and length rules, then the rare-token rule when a table is given."""

    stage = TEXT_STAGE

    def __init__(self, rules: TextRules) -> None:
        self._rules = rules

    def judge(self, record: Record, table: TokenFrequencyTable | None = None) -> Record | Reject:
        reason = check_caption(record["caption"], self._rules)
        if reason is not None:
            return Reject(reason)
        if table is not None:
            reason = check_rare_tokens(record["caption"], table, self._rules.max_rare_tokens)
            if reason is not None:
                return Reject(reason, " ".join(table.rare_tokens(words(record["caption"]))))
        return record


class CleanText(beam.PTransform):
    """Records → ``(kept, rejects)``: caption normalised in place, junk/length/rare-token rules applied.

    ``rare_tokens``: ``"pool"`` counts the table over this very pool (all read captions, normalised:
    ALIGN's "raw data"), ``"file"`` loads ``token_table_path``, ``"off"`` skips the rule.
    """

    stage = TEXT_STAGE  # its name in the funnel (job.build reads it)

    def __init__(
        self,
        rules: TextRules,
        rare_tokens: str = "pool",
        token_table_path: str | None = None,
        top_unigrams: int = 1_000_000,
        top_bigrams: int = 1_000_000,
    ) -> None:
        super().__init__()
        if rare_tokens not in ("pool", "file", "off"):
            raise ValueError(f"rare_tokens must be pool, file or off, not {rare_tokens!r}")
        self._rules = rules
        self._mode = rare_tokens
        self._path = token_table_path
        self._top = (top_unigrams, top_bigrams)

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        normalised = records | "Normalise" >> beam.Map(_normalised)
        side: dict = {}
        if self._mode == "pool":
            table = normalised | "CountTokenFrequencies" >> CountTokenFrequencies(*self._top)
            side["table"] = beam.pvalue.AsSingleton(table)
        elif self._mode == "file":
            table = records.pipeline | "TokenTable" >> beam.Create([self._path]) | beam.Map(load_token_table)
            side["table"] = beam.pvalue.AsSingleton(table)
        return apply_rule_stage(normalised, "CheckCaption", _CheckCaption(self._rules), **side)


def caption_digest(caption: str) -> bytes:
    """16-byte digest of a caption, compared case-insensitively ("Alt Img" and "alt img" are one alt-text)."""
    return hashlib.blake2b(caption.casefold().encode(), digest_size=16).digest()


def _url_digest(record: Record) -> bytes:
    return hashlib.blake2b((record.get("url") or record["key"]).encode(), digest_size=16).digest()


class _DropShared(RuleStage):
    stage = SHARED_STAGE

    def __init__(self, max_images: int) -> None:
        self._max_images = max_images

    def judge(self, record: Record, shared: dict[bytes, int]) -> Record | Reject:
        count = shared.get(caption_digest(record["caption"]))
        reason = check_alt_text_shared(count, self._max_images) if count is not None else None
        return record if reason is None else Reject(reason, f"alt-text used by {count} images")


class DropSharedAltTexts(beam.PTransform):
    """Drops alt-texts used by more than ``max_images`` distinct image URLs across the whole pool (ALIGN).

    Distinct (caption, url) pairs, then images per caption, both as lifted combines; only the captions
    over the limit (digests) reach the filter as a side input.
    """

    stage = SHARED_STAGE  # its name in the funnel (job.build reads it)

    def __init__(self, max_images: int = 10) -> None:
        super().__init__()
        self._max_images = max_images

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        max_images = self._max_images
        shared = (
            records
            | "CaptionUrl" >> beam.Map(lambda r: (caption_digest(r["caption"]), _url_digest(r)))
            | "DistinctPairs" >> beam.Distinct()
            | "CaptionOnly" >> beam.Keys()
            | "ImagesPerCaption" >> beam.combiners.Count.PerElement()
            | "OverLimit" >> beam.Filter(lambda kv: check_alt_text_shared(kv[1], max_images) is not None)
        )
        return apply_rule_stage(
            records, "DropShared", _DropShared(max_images), shared=beam.pvalue.AsDict(shared)
        )
