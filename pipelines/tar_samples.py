"""WebDataset / img2dataset tars → records: members grouped into samples, every loss named.

Members come from ``filters.tar_members.read_tar`` (bounded, resynchronising). A sample is the run of
adjacent members sharing a key (the member name up to the first dot of its file name). Read rejects:

==========================  ====================================================================
``tar_corrupt``             bytes with no valid tar header (offset and length in the detail)
``tar_truncated``           the stream ends inside a member or header
``file_too_large``          more decompressed bytes than ``--max_input_file_bytes``
``tar_member_too_large``    a member declares more bytes than ``--max_image_bytes`` (never read)
``tar_member_unsupported``  a sparse member (never expanded)
``tar_member_not_file``     a sample with a symlink, hard link, FIFO, device or directory member
``tar_sample_split``        a key seen before, not adjacent to its first members (or a member twice)
``row_unparseable``         the sample's json member is not a JSON object
==========================  ====================================================================

Keys are ``sample_key(source, sample, url)``; a rejected split sample adds its byte offset, so every
key stays unique. The keys already seen are remembered up to ``_TRACKED_SAMPLES`` per tar; past that,
every later sample's key includes its offset (still unique, still deterministic).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from filters.tar_members import TAR_TOO_LARGE, TAR_TRUNCATED, TarDamage, TarMember
from filters.text import coerce_text
from pipelines.records import Record
from pipelines.rows import (
    ROW_UNPARSEABLE,
    Columns,
    ReadLimits,
    caption_value,
    carried_columns,
    clean_unicode,
    keyed,
    parse_json_object,
    read_reject,
    sample_key,
)

FILE_TOO_LARGE = "file_too_large"
TAR_MEMBER_NOT_FILE = "tar_member_not_file"
TAR_SAMPLE_SPLIT = "tar_sample_split"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
_TRACKED_SAMPLES = 1_000_000


@dataclass
class _Sample:
    name: str
    offset: int
    split: bool
    members: dict[str, TarMember] = field(default_factory=dict)


def _sample_of(name: str) -> tuple[str, str] | None:
    """(sample, extension) of a member name; None for a plain folder entry (no dot in its name)."""
    directory, base = posixpath.split(name.removeprefix("./"))
    stem, dot, extension = base.partition(".")
    if not dot and not stem:
        return None
    return (f"{directory}/{stem}" if directory else stem), extension.lower()


def _reject(source: str, row: str, reason: str, detail: str, url: str = "") -> Record:
    record = {"key": sample_key(source, row, url), "url": url, "caption": ""}
    return read_reject(record, reason, f"{source} {detail}")


def _damage_reject(source: str, damage: TarDamage) -> Record:
    reason = FILE_TOO_LARGE if damage.reason == TAR_TOO_LARGE else damage.reason
    return _reject(source, f"damage@{damage.offset}", reason, f"byte {damage.offset}: {damage.detail}")


def tar_records(
    events: Iterable[TarMember | TarDamage], source: str, columns: Columns, limits: ReadLimits
) -> Iterator[Record]:
    """Records and read rejects from ``read_tar`` events, in stream order."""
    seen: set[str] = set()
    current: _Sample | None = None
    for event in events:
        if isinstance(event, TarDamage):
            yield _damage_reject(source, event)
            continue
        located = _sample_of(event.name)
        if located is None or (event.kind == "directory" and "." not in posixpath.basename(event.name)):
            continue  # a folder entry: structure, not part of a sample
        sample, extension = located
        if current is None or sample != current.name or extension in current.members:
            if current is not None:
                yield _sample_record(current, source, columns, limits, len(seen) >= _TRACKED_SAMPLES)
            split = sample in seen
            if len(seen) < _TRACKED_SAMPLES:
                seen.add(sample)
            current = _Sample(sample, event.offset, split)
        current.members[extension] = event
    if current is not None:
        yield _sample_record(current, source, columns, limits, len(seen) >= _TRACKED_SAMPLES)


def _sample_record(
    sample: _Sample, source: str, columns: Columns, limits: ReadLimits, by_offset: bool
) -> Record:
    name, members = sample.name, sample.members
    where = f"{name} at byte {sample.offset}"
    if sample.split:
        return _reject(source, f"{name}@{sample.offset}", TAR_SAMPLE_SPLIT,
                       f"{where}: members of this sample appeared earlier, not adjacent to these")  # fmt: skip
    row = f"{name}@{sample.offset}" if by_offset else name
    for _, member in sorted(members.items()):
        if member.problem is not None:
            detail = f"{where}: {member.name}: {member.detail}"
            return _reject(source, row, member.problem, detail)
    odd = sorted(f"{m.name} ({m.kind})" for m in members.values() if m.kind != "file")
    if odd:
        return _reject(source, row, TAR_MEMBER_NOT_FILE, f"{where}: not regular files: {', '.join(odd)}")
    meta = parse_json_object(members["json"].data or b"") if "json" in members else {}
    if meta is None:
        return _reject(source, row, ROW_UNPARSEABLE, f"{name}.json: not a JSON object")
    url = clean_unicode(coerce_text(meta.get(columns.url)).strip())
    if "txt" in members:
        caption: object = coerce_text(members["txt"].data)
    else:
        caption = meta.get(columns.caption)
    image = next((members[e].data for e in IMAGE_EXTENSIONS if e in members), None)
    # Our own shards (curated, or kept by --keep_fetched) carry the input's columns under "extra":
    # those come back as columns, not nested one level deeper.
    nested = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
    top = {k: v for k, v in meta.items() if k != "extra" or not nested}
    extra = carried_columns(top, columns, limits.max_extra_value_bytes)
    extra.update(carried_columns(nested, columns, limits.max_extra_value_bytes))
    extra["source_sample"] = clean_unicode(name)
    row_id = sample_key(source, row, url)
    record = {
        "key": row_id,
        "url": url,
        "caption": caption_value(caption),
        "extra": extra,
        "image_bytes": image,
    }
    return keyed(record, row_id, meta.get(columns.key) if columns.key else None, columns, f"{source} {where}")


__all__ = ["FILE_TOO_LARGE", "TAR_MEMBER_NOT_FILE", "TAR_SAMPLE_SPLIT", "TAR_TRUNCATED", "tar_records"]
