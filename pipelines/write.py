"""WriteShards and WriteManifest: WebDataset shards ``NNNNN.tar`` + manifest.json + sizes.json.

Sharding, deterministic whatever the runner, the worker count or the bundle boundaries:

1. ``buckets = max(ceil(n / shard_size), ceil(bytes / shard_max_bytes))`` from global totals, and each
   key goes to ``filters.hashing.bucket(key, buckets, "shard", seed)``: about ``shard_size`` samples each.
2. Inside a bucket samples are sorted by key and cut greedily wherever the next sample would push the
   tar past ``shard_max_bytes`` (a hard bound: tar sizes are computed exactly, headers and padding
   included). A plan step counts the parts of every bucket from light (key, size) pairs, so shard
   numbers are contiguous (``{00000..0000N}.tar``) before any tar is written.
3. Light records and their JPEGs meet in one CoGroupByKey per bucket; each part is streamed to
   ``_tmp/NNNNN.tar`` (fixed mtime, uid, gid, mode and USTAR format, so bytes depend only on the
   samples) while its sha256 is computed, then renamed into place.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from contract.files import (
    CAPTION_MEMBER,
    IMAGE_MEMBER,
    MANIFEST_FILE,
    MANIFEST_FORMAT_VERSION,
    META_MEMBER,
    SAMPLE_FIELDS,
    SIZES_FILE,
)
from filters.hashing import bucket
from filters.thumbnails import make_thumbnail
from pipelines.files import TMP_DIR, join, tmp_path, write_json
from pipelines.records import Record

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_END_OF_ARCHIVE = 2 * _BLOCK


def sample_json(record: Record) -> bytes:
    """``KEY.json``: the sample's fields as compact JSON with sorted keys (stable bytes)."""
    payload = {name: record.get(name) for name in SAMPLE_FIELDS}
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sample_members(record: Record, jpeg: bytes) -> list[tuple[str, bytes]]:
    key = record["key"]
    return [
        (f"{key}.{IMAGE_MEMBER}", jpeg),
        (f"{key}.{CAPTION_MEMBER}", record["caption"].encode("utf-8")),
        (f"{key}.{META_MEMBER}", sample_json(record)),
    ]


def _entry_bytes(size: int) -> int:
    return _BLOCK + math.ceil(size / _BLOCK) * _BLOCK


def sample_tar_bytes(record: Record) -> int:
    """Bytes the sample's three members take in a tar (headers and padding included)."""
    text, meta = len(record["caption"].encode("utf-8")), len(sample_json(record))
    return _entry_bytes(record["jpeg_size"]) + _entry_bytes(text) + _entry_bytes(meta)


def tar_bytes(member_bytes: int) -> int:
    """Size of a tar holding members that take ``member_bytes``: end blocks, then padding to a record."""
    return math.ceil((member_bytes + _END_OF_ARCHIVE) / _RECORD) * _RECORD


def split_parts(sizes: list[int], max_bytes: int) -> list[int]:
    """Greedy cut of ordered sample sizes into parts whose tars stay within ``max_bytes``: part lengths."""
    parts: list[int] = []
    count = used = 0
    for size in sizes:
        if count and tar_bytes(used + size) > max_bytes:
            parts.append(count)
            count = used = 0
        count += 1
        used += size
    if count:
        parts.append(count)
    return parts


def shard_buckets(samples: int, total_bytes: int, shard_size: int, max_bytes: int) -> int:
    """How many hash buckets: enough for ``shard_size`` samples and ``max_bytes`` bytes on average."""
    return max(1, math.ceil(samples / shard_size), math.ceil(total_bytes / max_bytes))


def shard_name(index: int) -> str:
    return f"{index:05d}.tar"


class _HashingWriter(io.RawIOBase):
    """A write-only stream that forwards to ``target`` while counting bytes and computing sha256."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self._target.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def write_tar(output: str, name: str, members: Iterable[tuple[str, bytes]]) -> dict[str, Any]:
    """Streams ``members`` into ``output/name`` via ``_tmp/``; returns ``{name, bytes, sha256}``."""
    staging = tmp_path(output, name)
    with FileSystems.create(staging, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        stream = _HashingWriter(handle)
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
            for member_name, data in members:
                info = tarfile.TarInfo(member_name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    FileSystems.rename([staging], [join(output, name)])
    return {"name": name, "bytes": stream.size, "sha256": stream.sha256.hexdigest()}


def _totals(records: Iterable[tuple[int, int]]) -> tuple[int, int]:
    samples = total = 0
    for count, size in records:
        samples += count
        total += size
    return samples, total


def _assign(
    record: Record, totals: tuple[int, int], shard_size: int, max_bytes: int, seed: int
) -> tuple[int, Any]:
    buckets = shard_buckets(totals[0], totals[1], shard_size, max_bytes)
    return bucket(record["key"], buckets, "shard", seed), record


def _assign_payload(
    payload: tuple[str, bytes], totals: tuple[int, int], shard_size: int, max_bytes: int, seed: int
) -> tuple[int, tuple[str, bytes]]:
    buckets = shard_buckets(totals[0], totals[1], shard_size, max_bytes)
    return bucket(payload[0], buckets, "shard", seed), payload


def _parts_of_bucket(item: tuple[int, Iterable[tuple[str, int]]], max_bytes: int) -> tuple[int, int]:
    group, sized = item
    return group, len(split_parts([size for _, size in sorted(sized)], max_bytes))


def _first_shards(parts: list[tuple[int, int]]) -> dict[int, int]:
    """Bucket → number of its first shard, numbering buckets' parts consecutively in bucket order."""
    first, offsets = 0, {}
    for group, count in sorted(parts):
        offsets[group] = first
        first += count
    return offsets


def _bucket_thumbnails(
    item: tuple[int, dict[str, list]], keys: Any, side: int = 128, max_bytes: int = 8192
) -> Iterator:
    """Thumbnails of the JPEGs in a bucket whose keys are rejects chosen as report examples after the
    image stage: their JPEG is only here."""
    for key, jpeg in item[1]["jpegs"]:
        if key in keys:
            thumbnail = make_thumbnail(jpeg, side=side, max_bytes=max_bytes)
            if thumbnail is not None:
                yield key, thumbnail


class _WriteBucket(beam.DoFn):
    def __init__(self, output: str, max_bytes: int) -> None:
        self._output = output
        self._max_bytes = max_bytes

    def process(
        self, item: tuple[int, dict[str, list]], first_shards: dict[int, int]
    ) -> Iterator[dict[str, Any]]:
        group, grouped = item
        records = sorted(grouped["records"], key=lambda r: r["key"])
        wanted = {r["key"] for r in records}
        jpegs = {key: jpeg for key, jpeg in grouped["jpegs"] if key in wanted}
        missing = wanted - jpegs.keys()
        if missing:  # a pipeline bug, not bad input: fail the bundle rather than write a broken shard
            raise RuntimeError(
                f"no JPEG reached the writer for {len(missing)} kept samples, e.g. {min(missing)}"
            )
        start = 0
        parts = split_parts([sample_tar_bytes(r) for r in records], self._max_bytes)
        for offset, count in enumerate(parts):
            chunk = records[start : start + count]
            start += count
            members = (member for r in chunk for member in sample_members(r, jpegs[r["key"]]))
            info = write_tar(self._output, shard_name(first_shards[group] + offset), members)
            yield {**info, "samples": count}


class WriteShards(beam.PTransform):
    """``(kept light records, (key, jpeg) payloads)`` → one dict per shard: name, samples, bytes, sha256.

    With ``thumbnail_keys`` (a one-element PCollection of a set of keys: rejects chosen as report examples
    after the image stage, ``pipelines.examples``) it returns ``(shards, thumbnails)``, the second a
    PCollection of ``(key, thumbnail JPEG)`` made where those rejects' JPEGs meet the writer anyway."""

    def __init__(
        self,
        output: str,
        shard_size: int,
        max_bytes: int,
        seed: int,
        thumbnail_keys: beam.PCollection | None = None,
        thumbnail_side: int = 128,
        thumbnail_bytes: int = 8192,
    ) -> None:
        super().__init__()
        self._output = output
        self._shard_size = shard_size
        self._max_bytes = max_bytes
        self._seed = seed
        self._thumbnail_keys = thumbnail_keys
        self._thumbnail = (thumbnail_side, thumbnail_bytes)

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> Any:
        records, payloads = inputs
        max_bytes, settings = self._max_bytes, (self._shard_size, self._max_bytes, self._seed)
        totals = beam.pvalue.AsSingleton(
            records
            | "SampleSizes" >> beam.Map(lambda r: (1, sample_tar_bytes(r)))
            | "Totals" >> beam.CombineGlobally(_totals)
        )
        bucketed = records | "AssignBuckets" >> beam.Map(_assign, totals, *settings)
        first_shards = beam.pvalue.AsSingleton(
            bucketed
            | "KeySizes" >> beam.MapTuple(lambda group, r: (group, (r["key"], sample_tar_bytes(r))))
            | "GroupSizes" >> beam.GroupByKey()
            | "PartsPerBucket" >> beam.Map(_parts_of_bucket, max_bytes)
            | "AllBuckets" >> beam.combiners.ToList()
            | "Numbering" >> beam.Map(_first_shards)
        )
        jpegs = payloads | "AssignPayloads" >> beam.Map(_assign_payload, totals, *settings)
        joined = {"records": bucketed, "jpegs": jpegs} | "JoinJpegs" >> beam.CoGroupByKey()
        shards = joined | "WriteTars" >> beam.ParDo(_WriteBucket(self._output, max_bytes), first_shards)
        if self._thumbnail_keys is None:
            return shards
        keys = beam.pvalue.AsSingleton(self._thumbnail_keys)
        thumbnails = joined | "LateThumbnails" >> beam.FlatMap(_bucket_thumbnails, keys, *self._thumbnail)
        return shards, thumbnails


def _write_manifest(
    shards: list[dict[str, Any]],
    output: str,
    config: dict[str, Any],
    versions: dict[str, str],
    seed: int,
    files: dict[str, str],
) -> str:
    shards = sorted(shards, key=lambda s: s["name"])
    write_json(output, SIZES_FILE, {s["name"]: s["samples"] for s in shards})
    manifest = {
        "format_version": MANIFEST_FORMAT_VERSION,
        "shards": [{k: s[k] for k in ("name", "samples", "bytes", "sha256")} for s in shards],
        "total_samples": sum(s["samples"] for s in shards),
        "total_bytes": sum(s["bytes"] for s in shards),
        "config": config,
        "versions": versions,
        "seed": seed,
        "files": {"sizes": SIZES_FILE, **files},
    }
    name = write_json(output, MANIFEST_FILE, manifest)
    tmp = join(output, TMP_DIR)
    if FileSystems.exists(tmp):
        FileSystems.delete([tmp])
    return name


class WriteManifest(beam.PTransform):
    """Shard dicts → sizes.json + manifest.json, written only after every ``artefacts`` file exists.

    ``artefacts`` maps a manifest ``files`` entry (e.g. ``"vocabulary"``) to a one-element
    PCollection holding that file's name; taking them as side inputs orders the manifest last.
    """

    def __init__(
        self,
        output: str,
        config: dict[str, Any],
        versions: dict[str, str],
        seed: int,
        artefacts: dict[str, beam.PCollection],
    ) -> None:
        super().__init__()
        self._output = output
        self._config = config
        self._versions = versions
        self._seed = seed
        self._artefacts = artefacts

    def expand(self, shards: beam.PCollection) -> beam.PCollection:
        names = sorted(self._artefacts)
        files = (
            [
                self._artefacts[name] | f"Name{name}" >> beam.Map(lambda file, n=name: (n, file))
                for name in names
            ]
            | "Artefacts" >> beam.Flatten()
            | "FilesDict" >> beam.combiners.ToDict()
        )
        return (
            shards
            | "AllShards" >> beam.combiners.ToList()
            | "Write"
            >> beam.Map(
                _write_manifest,
                self._output,
                self._config,
                self._versions,
                self._seed,
                beam.pvalue.AsSingleton(files),
            )
        )
