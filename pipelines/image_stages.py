"""Image stages: CheckAndHashImages (ALIGN's size rules, resize, re-encode, sha256 + pHash) and SplitPayloads.

After CheckAndHashImages a record's ``image_bytes`` is the shard JPEG; the fetched bytes are released.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from filters.decision import Reject
from filters.dedup import phash_hex, sha256_hex
from filters.image import ImageRules, process_image
from filters.nsfw_image import IMAGE_NSFW, check_image_nsfw
from filters.thumbnails import make_thumbnail
from pipelines.examples import ExampleSettings, LocalTopK, reason_key
from pipelines.records import Record
from pipelines.rule_stage import RuleStage, apply_rule_stage

STAGE = "image"


class _CheckAndHash(RuleStage):
    stage = STAGE

    def __init__(self, rules: ImageRules, examples: ExampleSettings, detector: Any = None) -> None:
        self._rules = rules
        self._examples = examples
        self._detector = detector  # a NudeNetDetector's config (or a stand-in); the model loads in setup()

    def setup(self) -> None:
        self._local_top = LocalTopK(self._examples.per_reason)  # pipelines.examples: which get thumbnails
        if self._detector is not None:
            self._detector.load()  # the ONNX session, once per DoFn instance

    def judge(self, record: Record) -> Record | Reject:
        data = record.get("image_bytes")
        processed = process_image(data, self._rules)
        if isinstance(processed, str):
            detail = f"{len(data)} bytes" if isinstance(data, bytes) else ""
            if record.get("http_content_type"):
                detail = f"{detail}, served as {record['http_content_type']}"
            return Reject(processed, detail)
        if self._detector is not None:  # ALIGN's pornographic-image filter, on the shard-size picture
            finding = check_image_nsfw(processed.image, self._detector)
            if finding.reason is not None:
                return Reject(finding.reason, finding.detail)
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
        return out

    def reject_row(self, record: Record, reject: Reject) -> Record:
        """With a thumbnail when this reject may be one of the report's examples (never an NSFW one)."""
        row = super().reject_row(record, reject)
        data = record.get("image_bytes")
        if (
            reject.reason != IMAGE_NSFW
            and isinstance(data, bytes)
            and self._local_top.admits(reason_key(row), self._examples.rank(row["key"]), row["key"])
        ):
            settings = self._examples
            thumbnail = make_thumbnail(data, self._rules, settings.thumbnail_side, settings.thumbnail_bytes)
            if thumbnail is not None:
                row["thumbnail"] = thumbnail
        return row


class CheckAndHashImages(beam.PTransform):
    """Records with fetched ``image_bytes`` → ``(kept, rejects)``.

    Kept records carry the shard JPEG in ``image_bytes``, the output and original sizes, ``sha256`` of
    the bytes as fetched and ``phash`` of the decoded picture (16 hex chars), the same two hashes
    ``filters.eval_blocklist`` computes for evaluation images. Rules and hashes share one step because
    only here are the fetched bytes and the decoded pixels both in hand: hashing later would mean
    keeping megabytes per record or decoding twice.
    """

    stage = STAGE  # its name in the funnel (job.build reads it)

    def __init__(
        self, rules: ImageRules, examples: ExampleSettings | None = None, nsfw_detector: Any = None
    ) -> None:
        super().__init__()
        self._rules = rules
        self._examples = examples or ExampleSettings()
        self._detector = nsfw_detector  # None: no NSFW image rule (``--drop_nsfw_images`` passes NudeNet's)

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        check = _CheckAndHash(self._rules, self._examples, self._detector)
        return apply_rule_stage(records, "CheckAndHash", check)


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
