"""Fetch once, curate many: ``--keep_fetched DIR`` keeps what the fetch stage got, per input file.

Layout, img2dataset's per input file: ``DIR/<input file>/NNNNN.tar`` (for each sample fetched,
``KEY.<ext>`` with the bytes as served, ``KEY.txt`` the caption, ``KEY.json`` with key, url, caption,
status, http_content_type and the carried columns under ``extra``), ``NNNNN.parquet`` (one row per
record that reached the fetch: key, url, caption, status ``success`` or ``failed_to_download``,
error_message, reason, http_content_type) and ``NNNNN_stats.json`` (count, successes,
failed_to_download, status_dict), then ``_fetched.json`` once every shard of that file is written.
Records go to shards by key hash (enough shards for ``shard_size`` records and ``shard_max_bytes``
bytes on average), sorted by key, tars with fixed metadata: the content depends on the input only.

A later run with the same DIR reads the files that have their ``_fetched.json``: their records take
their fetch result from DIR (a joined ``CoGroupByKey`` by key, one record and one kept entry per key),
so nothing is downloaded again and the dataset is the same as an uninterrupted run's; a record DIR
does not have (more reach the fetch with other options) is fetched, and not kept. Files without the
marker (the job died before it) are fetched and kept again. ``curate --input 'DIR/*/*.tar'
--input_format webdataset --key_column key`` re-curates the kept images with other thresholds.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from contract.files import KEPT_MARKER
from filters.decision import Reject
from filters.hashing import bucket
from filters.tar_members import TarLimits, TarMember, read_tar
from pipelines.files import TMP_DIR, join, read_bytes, write_bytes, write_json
from pipelines.records import REJECTS, Record
from pipelines.rule_stage import RoutingDoFn
from pipelines.write import write_tar

STAGE = "fetch"
SUCCESS = "success"
FAILED = "failed_to_download"
PARQUET_SCHEMA = pa.schema(
    [
        (n, pa.string())
        for n in ("key", "url", "caption", "status", "error_message", "reason", "http_content_type")
    ]
)
_MAGIC = ((b"\xff\xd8", "jpg"), (b"\x89PNG", "png"), (b"GIF8", "gif"), (b"RIFF", "webp"), (b"BM", "bmp"))


def folder_of(source: str) -> str:
    """The folder of one input file's kept shards (its path relative to its --input pattern, flattened)."""
    return source.replace("/", "__") or "_"


def done_sources(directory: str) -> dict[str, str]:
    """``{source: folder}`` of the input files whose kept shards are complete in ``directory``."""
    found = FileSystems.match([join(directory, "*", KEPT_MARKER)])[0].metadata_list
    done = {}
    for metadata in found:
        try:
            marker = json.loads(read_bytes(metadata.path))
        except (ValueError, OSError):
            continue  # a marker that does not read is not a finished file: it is fetched again
        if isinstance(marker, dict) and isinstance(marker.get("source"), str):
            done[marker["source"]] = folder_of(marker["source"])
    return done


def _extension(data: bytes) -> str:
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), "jpg")


def _sample_members(record: Record) -> list[tuple[str, bytes]]:
    key, data = record["key"], record["image_bytes"]
    meta = {
        "key": key,
        "url": record.get("url"),
        "caption": record.get("caption"),
        "status": SUCCESS,
        "http_content_type": record.get("http_content_type", ""),
        "extra": record.get("extra") or {},
    }
    members = [(f"{key}.{_extension(data)}", data)]
    if record.get("caption") is not None:
        members.append((f"{key}.txt", record["caption"].encode("utf-8", "surrogatepass")))
    members.append((f"{key}.json", json.dumps(meta, sort_keys=True, ensure_ascii=False).encode("utf-8")))
    return members


def _parquet_row(record: Record) -> dict[str, str]:
    failed = "image_bytes" not in record
    return {
        "key": record["key"],
        "url": str(record.get("url") or ""),
        "caption": str(record.get("caption") or ""),
        "status": FAILED if failed else SUCCESS,
        "error_message": str(record.get("detail") or "") if failed else "",
        "reason": str(record.get("reason") or "") if failed else "",
        "http_content_type": "" if failed else str(record.get("http_content_type") or ""),
    }


class _WriteShard(beam.DoFn):
    def __init__(self, directory: str) -> None:
        self._directory = directory

    def process(self, item: tuple[tuple[str, int], Iterable[Record]]) -> Iterator[tuple[str, str]]:
        (source, index), grouped = item
        records = sorted(grouped, key=lambda r: r["key"])
        folder = join(self._directory, folder_of(source))
        name = f"{index:05d}"
        fetched = [r for r in records if "image_bytes" in r]
        write_tar(folder, f"{name}.tar", (m for r in fetched for m in _sample_members(r)))
        table = pa.Table.from_pylist([_parquet_row(r) for r in records], schema=PARQUET_SCHEMA)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        write_bytes(folder, f"{name}.parquet", buffer.getvalue())
        status: dict[str, int] = {}
        for r in records:
            label = SUCCESS if "image_bytes" in r else str(r.get("reason"))
            status[label] = status.get(label, 0) + 1
        stats = {"count": len(records), "successes": len(fetched), "failed_to_download": len(records) - len(fetched),
                 "failed_to_resize": 0, "status_dict": dict(sorted(status.items())), "input": source}  # fmt: skip
        write_json(folder, f"{name}_stats.json", stats)
        yield source, name


def _shards(totals: tuple[int, int], shard_size: int, max_bytes: int) -> int:
    return max(1, math.ceil(totals[0] / shard_size), math.ceil(totals[1] / max_bytes))


def _size(record: Record) -> tuple[int, int]:
    return 1, len(record.get("image_bytes") or b"")


def _add_sizes(sizes: Iterable[tuple[int, int]]) -> tuple[int, int]:
    count = total = 0
    for n, size in sizes:
        count += n
        total += size
    return count, total


class WriteKeptFetched(beam.PTransform):
    """``(fetched records, fetch rejects)`` of files not yet kept → shards in DIR; returns the markers."""

    def __init__(self, directory: str, shard_size: int, max_bytes: int) -> None:
        super().__init__()
        self._directory = directory
        self._shard_size = shard_size
        self._max_bytes = max_bytes

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        directory, size, max_bytes = self._directory, self._shard_size, self._max_bytes
        records = inputs | "AllFetchResults" >> beam.Flatten()
        totals = beam.pvalue.AsDict(
            records
            | "SourceSizes" >> beam.Map(lambda r: (r["source"], _size(r)))
            | "PerSource" >> beam.CombinePerKey(_add_sizes)
        )
        return (
            records
            | "ShardOf"
            >> beam.Map(
                lambda r, t: (
                    (r["source"], bucket(r["key"], _shards(t[r["source"]], size, max_bytes), "kept")),
                    r,
                ),
                totals,
            )
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShard(directory))
            | "ShardsPerSource" >> beam.GroupByKey()  # one value per shard of the file: bounded
            | "Marker" >> beam.MapTuple(_write_marker, directory)
        )


def _write_marker(source: str, names: Iterable[str], directory: str = "") -> str:
    """The file's ``_fetched.json``, last: only now does a re-run take the folder as complete."""
    folder = join(directory, folder_of(source))
    name = write_json(folder, KEPT_MARKER, {"source": source, "shards": sorted(names)})
    staging = join(folder, TMP_DIR)
    if FileSystems.exists(staging):
        FileSystems.delete([staging])
    return name


class _ReadKept(beam.DoFn):
    """One kept folder → ``(key, ("ok", bytes, content type) | ("failed", reason, detail))``."""

    def __init__(self, directory: str, max_member_bytes: int) -> None:
        self._directory = directory
        self._limits = TarLimits(max_member_bytes=max_member_bytes)

    def process(self, folder: str) -> Iterator[tuple[str, tuple]]:
        root = join(self._directory, folder)
        for metadata in FileSystems.match([join(root, "*.parquet")])[0].metadata_list:
            try:
                rows = pq.read_table(io.BytesIO(read_bytes(metadata.path))).to_pylist()
            except (pa.ArrowException, ValueError):  # a damaged kept file: its records are fetched again
                continue
            for row in rows:
                if row.get("status") == FAILED and row.get("key"):
                    yield (
                        row["key"],
                        ("failed", row.get("reason") or "fetch_failed", row.get("error_message") or ""),
                    )
        for metadata in FileSystems.match([join(root, "*.tar")])[0].metadata_list:
            with FileSystems.open(metadata.path) as handle:
                yield from self._images(read_tar(handle, self._limits))

    def _images(self, events: Iterable[Any]) -> Iterator[tuple[str, tuple]]:
        data: dict[str, bytes] = {}
        for event in events:
            if not isinstance(event, TarMember) or event.data is None:
                continue
            extension = event.name.partition(".")[2]
            if extension == "json":
                try:
                    meta = json.loads(event.data)
                    key = meta["key"]
                except (ValueError, KeyError, TypeError):  # damaged: that record is fetched again
                    data.clear()
                    continue
                yield key, ("ok", data.pop("image", b""), meta.get("http_content_type", ""))
                data.clear()
            elif extension != "txt":
                data["image"] = event.data


class _Reuse(RoutingDoFn):
    """A record joined with its kept fetch result: fetched, rejected as it was then, or missing."""

    stage = STAGE

    def process(self, item: tuple[str, dict[str, list]]) -> Iterator[Any]:
        _, grouped = item
        entries = grouped["kept"]
        for record in grouped["records"]:
            if not entries:
                yield beam.pvalue.TaggedOutput("missing", record)
                continue
            status, *result = entries[0]  # ("ok", image, content type) or (status, reason, detail)
            if status == "ok":
                image, content_type = result
                yield self.route(record, {**record, "image_bytes": image, "http_content_type": content_type})
            else:  # the same reason and detail as when it was fetched: the dataset is a full run's
                yield self.route(record, Reject(*result))


class ReuseKeptFetched(beam.PTransform):
    """Records of files already kept → ``(fetched, rejects, missing)``: their fetch results from DIR, and
    the records DIR has no result for (to be fetched)."""

    def __init__(self, directory: str, folders: list[str], max_member_bytes: int) -> None:
        super().__init__()
        self._directory = directory
        self._folders = sorted(folders)
        self._max_member_bytes = max_member_bytes

    def expand(
        self, records: beam.PCollection
    ) -> tuple[beam.PCollection, beam.PCollection, beam.PCollection]:
        kept = (
            records.pipeline
            | "KeptFolders" >> beam.Create(self._folders)
            | "SpreadFolders" >> beam.Reshuffle()
            | "ReadKept" >> beam.ParDo(_ReadKept(self._directory, self._max_member_bytes))
        )
        keyed = records | "ByKey" >> beam.Map(lambda r: (r["key"], r))
        joined = (
            {"records": keyed, "kept": kept}
            | "JoinKept" >> beam.CoGroupByKey()
            | "Reuse" >> beam.ParDo(_Reuse()).with_outputs(REJECTS, "missing", main="fetched")
        )
        return joined.fetched, joined[REJECTS], joined.missing


def _without_source(record: Record) -> Record:
    return {k: v for k, v in record.items() if k != "source"}


class FetchKeepingResults(beam.PTransform):
    """``FetchImages`` with ``--keep_fetched DIR``: files already kept (``done``: source → folder) are
    reused, the others fetched and kept. Returns ``(fetched, rejects)`` like ``FetchImages``."""

    stage = STAGE  # its name in the funnel (job.build reads it)

    def __init__(self, fetch: Any, directory: str, done: dict[str, str], shard_size: int, max_bytes: int,
                 max_member_bytes: int) -> None:  # fmt: skip
        super().__init__()
        self._fetch = fetch  # a FetchConfig
        self._directory = directory
        self._done = dict(done)
        self._shard_size = shard_size
        self._max_bytes = max_bytes
        self._max_member_bytes = max_member_bytes

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        from pipelines.fetch import FetchImages  # fetch imports nothing of this module; kept lazy for clarity

        done = frozenset(self._done)
        new, old = records | "KeptAlready" >> beam.Partition(lambda r, _: int(r.get("source") in done), 2)
        fetched, failed = new | "FetchNew" >> FetchImages(self._fetch)
        _ = (fetched, failed) | "KeepFetched" >> WriteKeptFetched(
            self._directory, self._shard_size, self._max_bytes
        )
        reused, reused_failed, missing = old | "Reuse" >> ReuseKeptFetched(
            self._directory, list(self._done.values()), self._max_member_bytes
        )
        late, late_failed = missing | "FetchMissing" >> FetchImages(self._fetch)
        kept = (
            (fetched, reused, late)
            | "AllFetched" >> beam.Flatten()
            | "DropSource" >> beam.Map(_without_source)
        )
        rejects = (failed, reused_failed, late_failed) | "AllFetchRejects" >> beam.Flatten()
        return kept, rejects
