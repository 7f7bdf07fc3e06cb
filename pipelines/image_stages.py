"""Image stages: CheckAndHashImages (ALIGN's size rules, resize, re-encode, sha256 + pHash) and SplitPayloads.

After CheckAndHashImages a record's ``image_bytes`` is the shard JPEG; the fetched bytes are released.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from filters.dedup import phash_hex, sha256_hex
from filters.image import ImageRules, process_image
from filters.thumbnails import make_thumbnail
from pipelines.examples import ExampleSettings, LocalTopK, reason_key
from pipelines.records import REJECTS, Record, count_kept, make_reject

STAGE = "image"


class _CheckAndHash(beam.DoFn):
    def __init__(self, rules: ImageRules, examples: ExampleSettings) -> None:
        self._rules = rules
        self._examples = examples

    def setup(self) -> None:
        self._local_top = LocalTopK(self._examples.per_reason)  # pipelines.examples: which get thumbnails

    def process(self, record: Record) -> Iterator:
        data = record.get("image_bytes")
        processed = process_image(data, self._rules)
        if isinstance(processed, str):
            detail = f"{len(data)} bytes" if isinstance(data, bytes) else ""
            if record.get("http_content_type"):
                detail = f"{detail}, served as {record['http_content_type']}"
            reject = make_reject(record, STAGE, processed, detail)
            if isinstance(data, bytes) and self._local_top.admits(
                reason_key(reject), self._examples.rank(reject["key"]), reject["key"]
            ):
                settings = self._examples
                thumbnail = make_thumbnail(
                    data, self._rules, settings.thumbnail_side, settings.thumbnail_bytes
                )
                if thumbnail is not None:
                    reject["thumbnail"] = thumbnail
            yield beam.pvalue.TaggedOutput(REJECTS, reject)
            return
        count_kept(STAGE)
        out = {k: v for k, v in record.items() if k not in ("image_bytes", "http_content_type")}
        out.update(
            image_bytes=processed.jpeg,
            width=processed.width,
            height=processed.height,
            original_width=processed.original_width,
            original_height=processed.original_height,
            sha256=sha256_hex(data),
            phash=phash_hex(processed.image),
            jpeg_size=len(processed.jpeg),
        )
        yield out


class CheckAndHashImages(beam.PTransform):
    """Records with fetched ``image_bytes`` → ``(kept, rejects)``.

    Kept records carry the shard JPEG in ``image_bytes``, the output and original sizes, ``sha256`` of
    the bytes as fetched and ``phash`` of the decoded picture (16 hex chars), the same two hashes
    ``filters.eval_blocklist`` computes for evaluation images. Rules and hashes share one step because
    only here are the fetched bytes and the decoded pixels both in hand: hashing later would mean
    keeping megabytes per record or decoding twice.
    """

    def __init__(self, rules: ImageRules, examples: ExampleSettings | None = None) -> None:
        super().__init__()
        self._rules = rules
        self._examples = examples or ExampleSettings()

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        check = _CheckAndHash(self._rules, self._examples)
        checked = records | "CheckAndHash" >> beam.ParDo(check).with_outputs(REJECTS, main="kept")
        return checked.kept, checked[REJECTS]


def _split(record: Record) -> Iterator:
    yield beam.pvalue.TaggedOutput("payloads", (record["key"], record["image_bytes"]))
    yield {k: v for k, v in record.items() if k != "image_bytes"}


class SplitPayloads(beam.PTransform):
    """Hashed records → ``(light records, (key, jpeg) payloads)``.

    The global stages after this point (dedup, final balance, labels) move only light records; the
    JPEGs wait and meet their records once, in WriteShards' group by shard.
    """

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        split = records | "Split" >> beam.FlatMap(_split).with_outputs("payloads", main="light")
        return split.light, split.payloads
