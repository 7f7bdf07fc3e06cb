"""Rows of candidate tables (JSONL, CSV/TSV, parquet) → records, with a named reason for every bad row.

No Beam here except the reject counter: ``pipelines.read`` opens the files and calls these per line or
row. Every function is total: outside bytes give a record or a reject, never an exception.

Bounds (``ReadLimits``, each an option): a line (JSONL) or record (CSV, quoted newlines included) longer
than ``max_row_bytes`` is rejected as ``row_too_large`` without being parsed; a carried column whose
JSON is longer than ``max_extra_value_bytes`` is left out of ``extra`` and named, with its size, in
``extra["_omitted_columns"]`` (the row itself is kept: what is bounded is what is kept, not what is
parsed). A CSV quote that never closes costs its own line (``row_malformed``), not every later row.
"""

from __future__ import annotations

import base64
import csv
import datetime
import decimal
import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from filters.streams import LongLine
from filters.text import coerce_text, decode_text
from pipelines.records import Record, clean_unicode, make_reject

STAGE = "read"


class ReadReject(dict):
    """A rejects row from a reader: parsers yield records and these, told apart by type (``read.py``)."""


def read_reject(record: Record, reason: str, detail: str) -> ReadReject:
    return ReadReject(make_reject(record, STAGE, reason, detail))


ROW_UNPARSEABLE = "row_unparseable"
ROW_MALFORMED = "row_malformed"
ROW_TOO_LARGE = "row_too_large"
URL_MISSING = "url_missing"
KEY_MISSING = "key_missing"
KEY_INVALID = "key_invalid"
OMITTED_COLUMNS = "_omitted_columns"
MAX_KEY_CHARS = 128
# WebDataset cuts a member name at its first dot and reads slashes as folders: a key has neither.
_KEY_REFUSED = re.compile(r"[\s./\\\x00-\x1f\x7f]")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Columns:
    """Which input columns hold the URL and the caption, and (``key``, optional) the sample key, such
    as DataComp's ``uid``; every other column is carried under ``extra``."""

    url: str = "url"
    caption: str = "caption"
    key: str | None = None


@dataclass(frozen=True)
class ReadLimits:
    """What one input row may cost. ``max_row_bytes``: a JSONL line or CSV record, parsed whole up to this;
    ``max_extra_value_bytes``: a carried column kept in the sample's json; ``max_file_bytes``: the
    (decompressed) bytes read from one input file, the rest of it one ``file_too_large`` reject;
    ``max_member_bytes``: a member of a WebDataset tar (the download bound)."""

    max_row_bytes: int = 16 * 1024 * 1024
    max_extra_value_bytes: int = 64 * 1024
    max_file_bytes: int = 64 * 1024**3
    max_member_bytes: int = 20 * 1024 * 1024

    def __post_init__(self) -> None:
        if (
            min(self.max_row_bytes, self.max_extra_value_bytes, self.max_file_bytes, self.max_member_bytes)
            < 1
        ):
            raise ValueError("ReadLimits: every bound must be at least 1 byte")


DEFAULT_COLUMNS = Columns()
DEFAULT_LIMITS = ReadLimits()


def sample_key(source: str, row: str | int, url: str) -> str:
    """The stable sample key: 24 hex chars of blake2b over (source file, row, url)."""
    joined = f"{source}\x1f{row}\x1f{url}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(joined, digest_size=12).hexdigest()


def json_safe(value: object) -> object:
    """``value`` as something ``json.dumps`` writes the same way every time (extra columns go into KEY.json)."""
    if isinstance(value, str):
        return clean_unicode(value)
    if value is None or isinstance(value, bool | int):
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
        return {clean_unicode(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return clean_unicode(str(value))


def _json_size(value: object, bound: int) -> int:
    """Bytes of ``value`` as JSON, computed only when it might exceed ``bound``."""
    if value is None or isinstance(value, bool | int | float):
        return 0
    if isinstance(value, str) and len(value) * 4 + 2 <= bound:
        return 0
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def carried_columns(row: dict, columns: Columns, max_value_bytes: int) -> dict[str, object]:
    """Every column but url and caption, JSON-safe; values above ``max_value_bytes`` named, not kept."""
    extra: dict[str, object] = {}
    omitted: dict[str, int] = {}
    for key, value in row.items():
        if key in (columns.url, columns.caption, columns.key):
            continue
        name = clean_unicode(str(key))
        safe = json_safe(value)
        size = _json_size(safe, max_value_bytes)
        if size > max_value_bytes:
            omitted[name] = size
        else:
            extra[name] = safe
    if omitted:
        extra[OMITTED_COLUMNS] = dict(sorted(omitted.items()))
    return extra


def caption_value(value: object) -> str | None:
    """A caption cell as text (None stays None, so the text stage can say ``text_missing``)."""
    if value is None:
        return None
    return clean_unicode(value if isinstance(value, str) else coerce_text(value))


def column_key(value: object) -> str | tuple[str, str]:
    """A key column's value as a sample key, or ``(reason, detail)`` when it cannot be one."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return KEY_MISSING, "no key value"
    if isinstance(value, bool | float):  # 1.0 would become "1.0", True "True": not keys
        return KEY_INVALID, f"key {value!r}: a key is a string or an integer"
    text = clean_unicode(str(value) if isinstance(value, int) else coerce_text(value))
    if not text:
        return KEY_MISSING, "no key value"
    if len(text) > MAX_KEY_CHARS or _KEY_REFUSED.search(text):
        return KEY_INVALID, (
            f"key {text[:60]!r}: a key has at most {MAX_KEY_CHARS} characters and no dot, slash, "
            "backslash, space or control character"
        )
    return text


def keyed(record: Record, row_id: str, key_value: object, columns: Columns, where: str) -> Record:
    """``record`` keyed by its ``--key_column`` value (its ``row_id`` kept to break ties between
    duplicates, ``pipelines.unique_keys``), or a reject naming why the value cannot be a key."""
    if columns.key is None:
        return record
    found = column_key(key_value)
    if isinstance(found, tuple):
        return read_reject(record, found[0], f"{where}: {columns.key!r}: {found[1]}")
    return {**record, "key": found, "row_id": row_id}


def row_to_record(
    row: dict, source: str, index: int, columns: Columns, limits: ReadLimits = DEFAULT_LIMITS
) -> Record:
    """A record from one table row, or a reject when the row has no usable URL (or key)."""
    url = clean_unicode(coerce_text(row.get(columns.url)).strip())
    row_id = sample_key(source, index, url)
    record: Record = {
        "key": row_id,
        "url": url,
        "caption": caption_value(row.get(columns.caption)),
        "extra": carried_columns(row, columns, limits.max_extra_value_bytes),
    }
    if not url:
        return read_reject(record, URL_MISSING, f"{source} row {index}: no {columns.url!r} value")
    return keyed(
        record, row_id, row.get(columns.key) if columns.key else None, columns, f"{source} row {index}"
    )


def row_reject(source: str, index: int, reason: str, detail: str, caption: str = "") -> Record:
    bad = {"key": sample_key(source, index, ""), "url": "", "caption": caption}
    return read_reject(bad, reason, f"{source} {detail}")


def parse_json_object(text: str | bytes) -> dict | None:
    """``text`` parsed as a JSON object, or None (not JSON, not an object, nested too deep, digits too many)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _decoded(offset: int, line: bytes) -> str:
    return decode_text(line[len(_BOM) :] if offset == 0 and line.startswith(_BOM) else line)


def jsonl_records(
    lines: Iterable[tuple[int, bytes | LongLine]], source: str, columns: Columns, limits: ReadLimits
) -> Iterator[Record]:
    """One record or reject per non-empty line of a JSONL file (from ``filters.streams.bounded_lines``)."""
    for index, (offset, line) in enumerate(lines):
        if isinstance(line, LongLine):
            yield row_reject(source, index, ROW_TOO_LARGE, f"line {index}: {line.size} bytes, above {limits.max_row_bytes}")  # fmt: skip
            continue
        text = _decoded(offset, line).strip()
        if not text:
            continue
        row = parse_json_object(text)
        if row is None:
            yield row_reject(source, index, ROW_UNPARSEABLE, f"line {index}: not a JSON object", text[:200])
            continue
        yield row_to_record(row, source, index, columns, limits)


class _RecordTooLarge(Exception):
    pass


def _feed(
    replay: deque[tuple[int, bytes | LongLine]],
    source: Iterator[tuple[int, bytes | LongLine]],
    used: list[tuple[int, bytes | LongLine]],
    max_bytes: int,
) -> Iterator[str]:
    """Lines for one CSV record (replayed ones first), each noted in ``used``; raises past ``max_bytes``."""
    size = 0
    while True:
        item = replay.popleft() if replay else next(source, None)
        if item is None:
            return
        used.append(item)
        offset, line = item
        if isinstance(line, LongLine) or size + len(line) > max_bytes:
            raise _RecordTooLarge()
        size += len(line) + 1
        yield _decoded(offset, line) + "\n"


def _csv_records(
    lines: Iterable[tuple[int, bytes | LongLine]], delimiter: str, max_bytes: int
) -> Iterator[list[str] | tuple[str, str]]:
    """CSV records as field lists, or ``(reason, detail)`` for a line that is not one.

    A record may span lines (a quoted newline). When it does not parse (a quote never closes, or a
    later stray quote closes it into a record of the wrong shape), only its first line is rejected and
    parsing restarts on the next line, so one bad quote costs one row.
    """
    source = iter(lines)
    replay: deque[tuple[int, bytes | LongLine]] = deque()
    width: int | None = None
    while True:
        used: list[tuple[int, bytes | LongLine]] = []
        try:
            fields = next(
                csv.reader(_feed(replay, source, used, max_bytes), delimiter=delimiter, strict=True), None
            )
            error = None
        except csv.Error as err:
            fields, error = None, f"{err}"
        except _RecordTooLarge:
            fields, error = None, "too large"
        if fields is None and error is None:
            return
        if error is None and (len(used) == 1 or width is None or len(fields) == width):
            width = len(fields) if width is None else width
            yield fields
            continue
        first = used[0][1]
        replay.extendleft(reversed(used[1:]))
        if isinstance(first, LongLine) or (error == "too large" and len(used) == 1):
            length = first.size if isinstance(first, LongLine) else len(first)
            yield ROW_TOO_LARGE, f"{length} bytes, above {max_bytes}"
        elif error is not None and len(used) == 1:
            yield ROW_MALFORMED, error
        else:
            yield ROW_MALFORMED, "a quoted field that does not close on this line"


def delimited_records(
    lines: Iterable[tuple[int, bytes | LongLine]],
    source: str,
    columns: Columns,
    limits: ReadLimits,
    delimiter: str,
) -> Iterator[Record]:
    """Records from a CSV/TSV file with a header row; a row whose field count differs is ``row_malformed``."""
    # csv's own field limit (128 KiB by default) must not be the bound: max_row_bytes is.
    csv.field_size_limit(max(csv.field_size_limit(), limits.max_row_bytes))
    header: list[str] | None = None
    index = 0  # rows and rejects alike, so every reject key is unique
    for fields in _csv_records(lines, delimiter, limits.max_row_bytes):
        if isinstance(fields, tuple):
            where = f"row {index}" if header is not None else f"header line {index}"
            yield row_reject(source, index, fields[0], f"{where}: {fields[1]}")
        elif header is None:
            header = fields
            continue
        elif not any(fields):
            continue  # a blank line is not a row
        else:
            row = dict(zip(header, fields))
            record = row_to_record(row, source, index, columns, limits)
            if len(fields) != len(header) and not isinstance(record, ReadReject):
                detail = f"{source} row {index}: {len(fields)} fields, the header has {len(header)}"
                record = read_reject(record, ROW_MALFORMED, detail)
            yield record
        index += 1


def header_columns(
    lines: Iterable[tuple[int, bytes | LongLine]], delimiter: str, max_bytes: int
) -> set[str] | None:
    """The column names in a CSV/TSV file's header, or None when its first line is not a header."""
    first = next(_csv_records(lines, delimiter, max_bytes), None)
    return set(first) if isinstance(first, list) else None
