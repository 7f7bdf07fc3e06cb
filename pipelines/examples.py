"""Examples of what each rule dropped, for the report: a few rejects per stage/reason, with thumbnails.

Which rejects are examples is decided by a hash, never by bundle order: the ``per_reason`` rejects of a
(stage, reason) with the smallest ``unit_hash(key, "example", seed)`` (ties by key, url, caption). So
the same input gives the same examples on any runner and worker count.

Thumbnails (``filters.thumbnails``, at most ``thumbnail_bytes`` each) exist only where the image bytes
are still at hand, in the image stage. Making one for every image reject would cost a decode each; so
each image-stage DoFn instance keeps its own ``LocalTopK`` and thumbnails only a reject that ranks
among the ``per_reason`` smallest it has seen so far for that reason. That is exact (a reject in the
global top K is in the top K of every subset that holds it) and costs about ``K · ln(n / K)``
thumbnails per instance and reason. ``SelectRejectExamples`` then picks the global top K with a lifted
``Top.PerKey`` (at most K per reason held per worker), and ``WriteRejects`` keeps a thumbnail in
``rejects/*.parquet`` only for those K: the thumbnail bytes in the rejects output are bounded by
``per_reason × thumbnail_bytes`` per reason.

``examples.json``::

    {"per_reason": 8, "reasons": {"image/image_too_small": [
        {"key": ..., "url": ..., "caption": ..., "detail": ..., "thumbnail": "<base64 JPEG>" | null}, ...]}}
"""

from __future__ import annotations

import base64
import bisect
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from contract.files import EXAMPLES_FILE
from filters.hashing import unit_hash
from filters.thumbnails import DEFAULT_MAX_BYTES, DEFAULT_SIDE
from pipelines.files import write_json
from pipelines.records import Record

DEFAULT_PER_REASON = 8
_TEXT_CHARS = 300


@dataclass(frozen=True)
class ExampleSettings:
    """How many examples per reason, and the size of their thumbnails."""

    per_reason: int = DEFAULT_PER_REASON
    thumbnail_side: int = DEFAULT_SIDE
    thumbnail_bytes: int = DEFAULT_MAX_BYTES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.per_reason < 0 or self.thumbnail_side < 16 or self.thumbnail_bytes < 512:
            raise ValueError("examples: per reason must be >= 0, thumbnails at least 16 px and 512 bytes")

    def rank(self, key: object) -> float:
        return unit_hash(str(key), "example", self.seed)


def reason_key(row: Record) -> str:
    return f"{row['stage']}/{row['reason']}"


class LocalTopK:
    """The ``k`` smallest (rank, key) seen so far per reason, by one DoFn instance."""

    def __init__(self, k: int) -> None:
        self._k = k
        self._seen: dict[str, list[tuple[float, str]]] = {}

    def admits(self, reason: str, rank: float, key: str) -> bool:
        """Whether (rank, key) is among the ``k`` smallest of ``reason`` so far (and records it)."""
        if self._k <= 0:
            return False
        entries = self._seen.setdefault(reason, [])
        item = (rank, key)
        if item in entries:  # the same record again (a retried bundle): still an example
            return True
        if len(entries) >= self._k and item > entries[-1]:
            return False
        bisect.insort(entries, item)
        del entries[self._k :]
        return True


def _order(example: dict[str, Any]) -> tuple:
    return (example["rank"], example["key"], example["url"], example["caption"], example["detail"])


def _example(row: Record, settings: ExampleSettings) -> tuple[str, dict[str, Any]]:
    return reason_key(row), {
        "rank": settings.rank(row.get("key")),
        "key": str(row.get("key") or ""),
        "url": str(row.get("url") or "")[:_TEXT_CHARS],
        "caption": str(row.get("caption") or "")[:_TEXT_CHARS],
        "detail": str(row.get("detail") or "")[:_TEXT_CHARS],
        "thumbnail": row.get("thumbnail"),
    }


def _as_dict(grouped: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    return {reason: sorted(examples, key=_order) for reason, examples in sorted(grouped)}


class SelectRejectExamples(beam.PTransform):
    """All rejects → a one-element PCollection ``{stage/reason: [example, ...]}`` (smallest ranks first)."""

    def __init__(self, settings: ExampleSettings) -> None:
        super().__init__()
        self._settings = settings

    def expand(self, rejects: beam.PCollection) -> beam.PCollection:
        settings = self._settings
        return (
            rejects
            | "AsExample" >> beam.Map(_example, settings)
            | "SmallestRanks"
            >> beam.combiners.Top.PerKey(max(settings.per_reason, 1), key=_order, reverse=True)
            | "AllReasons" >> beam.combiners.ToList()
            | "ByReason" >> beam.Map(_as_dict)
        )


def chosen_keys(examples: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str]]:
    """(stage/reason, key) of every example that carries a thumbnail."""
    return {(reason, e["key"]) for reason, rows in examples.items() for e in rows if e["thumbnail"]}


def keys_without_thumbnail(examples: dict[str, list[dict[str, Any]]]) -> frozenset[str]:
    """Keys of the examples that have no thumbnail yet: those rejected after the image stage get one
    where their JPEG reaches the shard writer (``pipelines.write.WriteShards``)."""
    return frozenset(e["key"] for rows in examples.values() for e in rows if not e["thumbnail"])


def examples_document(
    examples: dict[str, list[dict[str, Any]]], per_reason: int, late: dict[str, bytes] | None = None
) -> dict[str, Any]:
    def encode(example: dict[str, Any]) -> dict[str, Any]:
        thumbnail = example["thumbnail"] or (late or {}).get(example["key"])
        return {
            **{k: example[k] for k in ("key", "url", "caption", "detail")},
            "thumbnail": base64.b64encode(thumbnail).decode("ascii") if thumbnail else None,
        }

    return {
        "per_reason": per_reason,
        "reasons": {reason: [encode(e) for e in rows[:per_reason]] for reason, rows in examples.items()},
    }


class WriteExamples(beam.PTransform):
    """``(selected examples, (key, thumbnail) made later)`` → ``examples.json``; returns a one-element
    PCollection of its name."""

    def __init__(self, output: str, per_reason: int) -> None:
        super().__init__()
        self._output = output
        self._per_reason = per_reason

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        examples, late = inputs
        output, per_reason = self._output, self._per_reason
        return examples | "Write" >> beam.Map(
            lambda chosen, made: write_json(
                output, EXAMPLES_FILE, examples_document(chosen, per_reason, made)
            ),
            beam.pvalue.AsDict(late),
        )
