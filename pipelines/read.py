"""ReadCandidates: candidate tables (parquet, JSONL, CSV/TSV) or existing WebDataset shards → records.

Every input goes through ``FileSystems`` (local paths, ``gs://``, ``s3://``). The unit of parallel work
is a parquet row group, or a whole JSONL/CSV/TSV file or tar (split very large text files before a run).

A record's ``key`` is ``blake2b(source, row, url)`` as 24 hex chars: ``source`` is the file's path
relative to the directory its ``--input`` pattern starts in, ``row`` the row index in the file (the sample
key inside a tar). It is deterministic from the input, unique (96 bits), and free of dots, which
WebDataset reserves for extensions. A row that cannot be read becomes a reject (stage ``read``), and a
file that cannot be opened at all becomes one reject for the file, so ``read`` counts every candidate.
"""

from __future__ import annotations

import base64
import csv
import datetime
import decimal
import gzip
import hashlib
import io
import json
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from filters.text import coerce_text
from pipelines.records import REJECTS, Record, make_reject

STAGE = "read"
ROW_UNPARSEABLE = "row_unparseable"
ROW_MALFORMED = "row_malformed"
URL_MISSING = "url_missing"
FILE_UNREADABLE = "file_unreadable"

FORMATS = ("parquet", "jsonl", "csv", "tsv", "webdataset")
_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tar": "webdataset",
}
_COMPRESSED = (".gz", ".bz2", ".zst", ".deflate")
_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
_GLOB_CHARS = "*?["
# What a corrupt or truncated file raises. Anything else (a network error on gs://, a bug) fails the
# bundle, so the runner retries it instead of counting a readable file as unreadable.
_DATA_ERRORS = (ValueError, EOFError, tarfile.TarError, pa.ArrowException, zlib.error, gzip.BadGzipFile)
_MAX_CSV_FIELD = 1 << 24  # a caption cell may be huge; the text rules cut it, the reader must not fail on it


@dataclass(frozen=True)
class InputFile:
    """One matched input file: where it is, its name for keys, and how to parse it."""

    path: str
    source: str
    format: str


@dataclass(frozen=True)
class Columns:
    """Which input columns hold the URL and the caption; every other column is carried under ``extra``."""

    url: str = "url"
    caption: str = "caption"


def format_of(path: str) -> str | None:
    """The input format implied by a file name (compression suffixes ignored), or None."""
    name = path.lower()
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return _EXTENSIONS.get(os.path.splitext(name)[1])


def _pattern_base(pattern: str) -> str:
    """The directory part of ``pattern`` before its first wildcard: keys are relative to it."""
    cut = min((pattern.find(c) for c in _GLOB_CHARS if c in pattern), default=len(pattern))
    head = pattern[:cut]
    return head if cut < len(pattern) and head.endswith("/") else head.rsplit("/", 1)[0] + "/"


def match_inputs(patterns: list[str], input_format: str) -> list[InputFile]:
    """Every file the patterns match, sorted and de-duplicated; raises ``ValueError`` with a one-line message."""
    found: dict[str, InputFile] = {}
    for pattern, result in zip(patterns, FileSystems.match(patterns)):
        paths = [metadata.path for metadata in result.metadata_list]
        if not paths:
            raise ValueError(f"--input matched no files: {pattern}")
        base = _pattern_base(pattern)
        for path in paths:
            fmt = input_format if input_format != "auto" else format_of(path)
            if fmt is None:
                raise ValueError(f"--input_format=auto cannot tell the format of {path}; pass --input_format")
            source = path[len(base) :] if path.startswith(base) else os.path.basename(path)
            found.setdefault(path, InputFile(path=path, source=source, format=fmt))
    return [found[path] for path in sorted(found)]


def sample_key(source: str, row: str | int, url: str) -> str:
    """The stable sample key: 24 hex chars of blake2b over (source file, row, url)."""
    return hashlib.blake2b(f"{source}\x1f{row}\x1f{url}".encode(), digest_size=12).hexdigest()


def json_safe(value: object) -> object:
    """``value`` as something ``json.dumps`` writes the same way every time (extra columns go into KEY.json)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def row_to_record(row: dict, source: str, index: int, columns: Columns) -> Record:
    """A record from one table row, or a reject when the row has no usable URL."""
    url = coerce_text(row.get(columns.url)).strip()
    caption = row.get(columns.caption)
    extra = {str(k): json_safe(v) for k, v in row.items() if k not in (columns.url, columns.caption)}
    record: Record = {
        "key": sample_key(source, index, url),
        "url": url,
        "caption": caption if caption is None or isinstance(caption, str) else coerce_text(caption),
        "extra": extra,
    }
    if not url:
        return make_reject(record, STAGE, URL_MISSING, f"{source} row {index}: no {columns.url!r} value")
    return record


def _file_reject(unit: InputFile, error: Exception) -> Record:
    record = {"key": sample_key(unit.source, "file", unit.path), "url": unit.path, "caption": ""}
    return make_reject(record, STAGE, FILE_UNREADABLE, f"{type(error).__name__}: {error}")


def _emit(record: Record) -> beam.pvalue.TaggedOutput | Record:
    return beam.pvalue.TaggedOutput(REJECTS, record) if "stage" in record else record


def _open(path: str, raw: bool = False) -> io.BufferedReader:
    compression = CompressionTypes.UNCOMPRESSED if raw else CompressionTypes.AUTO
    return FileSystems.open(path, compression_type=compression)


class _SplitParquet(beam.DoFn):
    """Parquet files become one work unit per row group (with its first row index); others stay whole."""

    def process(self, unit: InputFile) -> Iterator[tuple[InputFile, int, int]]:
        if unit.format != "parquet":
            yield unit, -1, 0
            return
        try:
            with _open(unit.path, raw=True) as handle:
                metadata = pq.ParquetFile(handle).metadata
        except _DATA_ERRORS as error:  # a corrupt footer: the file is one reject, the job goes on
            yield beam.pvalue.TaggedOutput(REJECTS, _file_reject(unit, error))
            return
        first = 0
        for group in range(metadata.num_row_groups):
            yield unit, group, first
            first += metadata.row_group(group).num_rows


class _ReadUnit(beam.DoFn):
    """Reads one work unit and yields records, with rejects on the REJECTS tag."""

    def __init__(self, columns: Columns) -> None:
        self._columns = columns

    def process(self, work: tuple[InputFile, int, int]) -> Iterator:
        unit, group, first_row = work
        reader = {
            "parquet": self._parquet,
            "jsonl": self._jsonl,
            "csv": self._delimited,
            "tsv": self._delimited,
            "webdataset": self._tar,
        }[unit.format]
        try:
            for record in reader(unit, group, first_row):
                yield _emit(record)
        except _DATA_ERRORS as error:  # the file broke mid-way: what was read stands, the rest is one reject
            yield beam.pvalue.TaggedOutput(REJECTS, _file_reject(unit, error))

    def _parquet(self, unit: InputFile, group: int, first_row: int) -> Iterator[Record]:
        with _open(unit.path, raw=True) as handle:
            rows = pq.ParquetFile(handle).read_row_group(group).to_pylist()
        for offset, row in enumerate(rows):
            yield row_to_record(row, unit.source, first_row + offset, self._columns)

    def _jsonl(self, unit: InputFile, group: int, first_row: int) -> Iterator[Record]:
        with _open(unit.path) as handle:
            for index, line in enumerate(handle):
                text = coerce_text(line).strip()
                if not text:
                    continue
                try:
                    row = json.loads(text)
                except ValueError as error:
                    row = error
                if not isinstance(row, dict):
                    bad = {"key": sample_key(unit.source, index, ""), "url": "", "caption": text[:200]}
                    yield make_reject(
                        bad, STAGE, ROW_UNPARSEABLE, f"{unit.source} line {index}: not a JSON object"
                    )
                    continue
                yield row_to_record(row, unit.source, index, self._columns)

    def _delimited(self, unit: InputFile, group: int, first_row: int) -> Iterator[Record]:
        csv.field_size_limit(_MAX_CSV_FIELD)
        with _open(unit.path) as handle:
            lines = (coerce_text(line) for line in handle)
            reader = csv.DictReader(lines, delimiter="\t" if unit.format == "tsv" else ",")
            index = 0
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    bad = {"key": sample_key(unit.source, index, ""), "url": "", "caption": ""}
                    yield make_reject(bad, STAGE, ROW_UNPARSEABLE, f"{unit.source} row {index}: {error}")
                    index += 1
                    continue
                if None in row or None in row.values():  # more or fewer fields than the header
                    record = row_to_record(
                        {k: v for k, v in row.items() if k is not None}, unit.source, index, self._columns
                    )
                    if "stage" not in record:
                        detail = f"{unit.source} row {index}: field count differs from the header"
                        record = make_reject(record, STAGE, ROW_MALFORMED, detail)
                    yield record
                else:
                    yield row_to_record(row, unit.source, index, self._columns)
                index += 1

    def _tar(self, unit: InputFile, group: int, first_row: int) -> Iterator[Record]:
        with _open(unit.path, raw=True) as handle, tarfile.open(fileobj=handle, mode="r|*") as tar:
            current, members = None, {}
            for member in tar:
                if not member.isfile():
                    continue
                directory, name = os.path.split(member.name)
                stem, _, extension = name.partition(".")
                sample = f"{directory}/{stem}" if directory else stem
                if sample != current and current is not None:
                    yield self._tar_sample(unit, current, members)
                    members = {}
                current = sample
                members[extension.lower()] = tar.extractfile(member).read()
            if current is not None:
                yield self._tar_sample(unit, current, members)

    def _tar_sample(self, unit: InputFile, sample: str, members: dict[str, bytes]) -> Record:
        try:
            meta = json.loads(members["json"]) if "json" in members else {}
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            bad = {"key": sample_key(unit.source, sample, ""), "url": "", "caption": ""}
            return make_reject(bad, STAGE, ROW_UNPARSEABLE, f"{unit.source} {sample}.json: not a JSON object")
        url = coerce_text(meta.get(self._columns.url)).strip()
        caption = coerce_text(members["txt"]) if "txt" in members else meta.get(self._columns.caption)
        image = next((members[ext] for ext in _IMAGE_EXTENSIONS if ext in members), None)
        extra = {
            str(k): json_safe(v)
            for k, v in meta.items()
            if k not in (self._columns.url, self._columns.caption)
        }
        extra["source_sample"] = sample
        return {
            "key": sample_key(unit.source, sample, url),
            "url": url,
            "caption": caption if caption is None or isinstance(caption, str) else coerce_text(caption),
            "extra": extra,
            "image_bytes": image,
        }


class ReadCandidates(beam.PTransform):
    """Files → ``(records, rejects)``; records carry key, url, caption and ``extra`` (``image_bytes`` for tars)."""

    def __init__(self, files: list[InputFile], columns: Columns = Columns()) -> None:
        super().__init__()
        self._files = files
        self._columns = columns

    def expand(self, pipeline: beam.pvalue.PBegin) -> tuple[beam.PCollection, beam.PCollection]:
        units = (
            pipeline
            | "ListFiles" >> beam.Create(self._files)
            | "SplitRowGroups" >> beam.ParDo(_SplitParquet()).with_outputs(REJECTS, main="units")
        )
        read = (
            units.units
            # Spread row groups over workers: a file listing is a single tiny bundle otherwise.
            | "SpreadUnits" >> beam.Reshuffle()
            | "ReadRows" >> beam.ParDo(_ReadUnit(self._columns)).with_outputs(REJECTS, main="records")
        )
        rejects = (units[REJECTS], read[REJECTS]) | "FlattenReadRejects" >> beam.Flatten()
        return read.records, rejects
