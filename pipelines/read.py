"""ReadCandidates: candidate tables (parquet, JSONL, CSV/TSV) or existing WebDataset shards → records.

Every input goes through ``FileSystems`` (local paths, ``gs://``, ``s3://``) and, whatever its name, is
decompressed when its first bytes say gzip, bzip2, xz or zstd (``filters.streams``; ``.deflate`` by
name). The unit of parallel work is a parquet row group, or a whole JSONL/CSV/TSV file or tar (split
very large text files before a run).

A record's ``key`` is ``blake2b(source, row, url)`` as 24 hex chars: ``source`` is the file's path
relative to the directory its ``--input`` pattern starts in, ``row`` the row index in the file (the sample
key inside a tar). It is deterministic from the input, unique (96 bits), and free of dots, which
WebDataset reserves for extensions. A row that cannot be read becomes a reject (stage ``read``, reasons in
``pipelines.rows`` and ``pipelines.tar_samples``), and a file that cannot be opened at all, or breaks
mid-way, one more reject for the rest of the file, so ``read`` counts every candidate.
"""

from __future__ import annotations

import gzip
import itertools
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from filters.streams import InputTooLarge, bounded_lines, open_decompressed
from filters.tar_members import TarLimits, read_tar
from filters.text import decode_text
from pipelines.records import REJECTS, Record, count_kept, make_reject
from pipelines.rows import (
    DEFAULT_COLUMNS,
    DEFAULT_LIMITS,
    ROW_MALFORMED,
    ROW_UNPARSEABLE,
    STAGE,
    URL_MISSING,
    Columns,
    ReadLimits,
    ReadReject,
    delimited_records,
    header_columns,
    jsonl_records,
    parse_json_object,
    row_to_record,
    sample_key,
)
from pipelines.tar_samples import FILE_TOO_LARGE, tar_records
from pipelines.unique_keys import KeepUniqueKeys

__all__ = [
    "FILE_TOO_LARGE",
    "FILE_UNREADABLE",
    "FORMATS",
    "ROW_MALFORMED",
    "ROW_UNPARSEABLE",
    "URL_MISSING",
    "Columns",
    "InputFile",
    "ReadCandidates",
    "ReadLimits",
    "format_of",
    "match_inputs",
    "open_input",
    "sample_key",
]

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
    ".tgz": "webdataset",
}
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".deflate")
_GLOB_CHARS = "*?["
# What a corrupt or truncated file raises. Anything else (a network error on gs://, a bug) fails the
# bundle, so the runner retries it instead of counting a readable file as unreadable.
_DATA_ERRORS = (ValueError, EOFError, pa.ArrowException, zlib.error, gzip.BadGzipFile)


@dataclass(frozen=True)
class InputFile:
    """One matched input file: where it is, its name for keys, and how to parse it."""

    path: str
    source: str
    format: str


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


def _file_reject(unit: InputFile, error: Exception, group: int = -1) -> Record:
    record = {"key": sample_key(unit.source, f"file:{group}", unit.path), "url": unit.path, "caption": ""}
    reason = FILE_TOO_LARGE if isinstance(error, InputTooLarge) else FILE_UNREADABLE
    return make_reject(record, STAGE, reason, f"{type(error).__name__}: {error}")


def _emit(record: Record) -> beam.pvalue.TaggedOutput | Record:
    if isinstance(record, ReadReject):  # a parser's rejects row: out as a plain dict
        return beam.pvalue.TaggedOutput(REJECTS, dict(record))
    count_kept(STAGE)  # live progress counts records read as they come (pipelines.progress)
    return record


def _open(path: str, raw: bool = False) -> Any:
    compression = CompressionTypes.UNCOMPRESSED if raw else CompressionTypes.AUTO
    return FileSystems.open(path, compression_type=compression)


def open_input(path: str) -> Any:
    """``path`` opened for reading, decompressed by its magic bytes (``.deflate`` by its name)."""
    if path.lower().endswith(".deflate"):
        return _open(path)
    return _open(path, raw=True)


def first_columns(unit: InputFile, rows: int = 100) -> set[str] | None:
    """Column names of a table file (parquet schema, CSV header, keys of its first JSONL objects), or
    None when they cannot be told (a tar, or a file the job itself will report as unreadable)."""
    limits = DEFAULT_LIMITS
    try:
        if unit.format == "parquet":
            with _open(unit.path, raw=True) as handle:
                return set(pq.ParquetFile(handle).schema_arrow.names)
        if unit.format not in ("jsonl", "csv", "tsv"):
            return None
        with open_input(unit.path) as handle:
            lines = bounded_lines(open_decompressed(handle), limits.max_row_bytes, limits.max_file_bytes)
            if unit.format != "jsonl":
                delimiter = "\t" if unit.format == "tsv" else ","
                return header_columns(lines, delimiter, limits.max_row_bytes)
            found: set[str] = set()
            for _, line in itertools.islice(lines, rows):
                text = decode_text(line.removeprefix(b"\xef\xbb\xbf")) if isinstance(line, bytes) else ""
                row = parse_json_object(text) if text.strip() else None
                found.update(str(k) for k in row or {})
            return found or None
    except _DATA_ERRORS:
        return None


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

    def __init__(self, columns: Columns, limits: ReadLimits, tag_source: bool = False) -> None:
        self._columns = columns
        self._limits = limits
        self._tag_source = tag_source

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
                if self._tag_source:  # --keep_fetched keeps fetch results per input file
                    record["source"] = unit.source
                yield _emit(record)
        except _DATA_ERRORS as error:  # the file broke mid-way: what was read stands, the rest is one reject
            yield beam.pvalue.TaggedOutput(REJECTS, _file_reject(unit, error, group))

    def _parquet(self, unit: InputFile, group: int, first_row: int) -> Iterator[Record]:
        with _open(unit.path, raw=True) as handle:
            rows = pq.ParquetFile(handle).read_row_group(group).to_pylist()
        for offset, row in enumerate(rows):
            yield row_to_record(row, unit.source, first_row + offset, self._columns, self._limits)

    def _lines(self, handle: Any) -> Iterator:
        limits = self._limits
        return bounded_lines(open_decompressed(handle), limits.max_row_bytes, limits.max_file_bytes)

    def _jsonl(self, unit: InputFile, group: int, first_row: int) -> Iterator[Record]:
        with open_input(unit.path) as handle:
            yield from jsonl_records(self._lines(handle), unit.source, self._columns, self._limits)

    def _delimited(self, unit: InputFile, group: int, first_row: int) -> Iterator[Record]:
        delimiter = "\t" if unit.format == "tsv" else ","
        with open_input(unit.path) as handle:
            lines = self._lines(handle)
            yield from delimited_records(lines, unit.source, self._columns, self._limits, delimiter)

    def _tar(self, unit: InputFile, group: int, first_row: int) -> Iterator[Record]:
        limits = TarLimits(
            max_member_bytes=self._limits.max_member_bytes, max_total_bytes=self._limits.max_file_bytes
        )
        with open_input(unit.path) as handle:
            events = read_tar(open_decompressed(handle), limits)
            yield from tar_records(events, unit.source, self._columns, self._limits)


class ReadCandidates(beam.PTransform):
    """Files → ``(records, rejects)``; records carry key, url, caption and ``extra`` (``image_bytes`` for tars)."""

    stage = STAGE  # its name in the funnel (job.build reads it)

    def __init__(
        self,
        files: list[InputFile],
        columns: Columns = DEFAULT_COLUMNS,
        limits: ReadLimits = DEFAULT_LIMITS,
        tag_source: bool = False,
    ) -> None:
        super().__init__()
        self._files = files
        self._columns = columns
        self._limits = limits
        self._tag_source = tag_source

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
            | "ReadRows"
            >> beam.ParDo(_ReadUnit(self._columns, self._limits, self._tag_source)).with_outputs(
                REJECTS, main="records"
            )
        )
        records, parts = read.records, [units[REJECTS], read[REJECTS]]
        if self._columns.key is not None:  # --key_column: the first row of each key keeps it
            records, duplicates = records | "KeepUniqueKeys" >> KeepUniqueKeys()
            parts.append(duplicates)
        rejects = parts | "FlattenReadRejects" >> beam.Flatten()
        return records, rejects
