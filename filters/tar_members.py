"""A bounded, resynchronising reader of tar streams (WebDataset and img2dataset shards).

Pure (stdlib only, no Beam, no torch), so the curation job and a training loader can share it.
Python's streaming ``tarfile`` treats the first bad header as the end of the archive, reads members
whole (a 10 KB sparse tar expands to gigabytes) and has no bound on header extensions; this reader:

- parses every 512-byte header with ``tarfile.TarInfo.frombuf`` (which checks the header checksum) and,
  after a bad one, resynchronises on the next block that is a valid header: the bytes in between are
  yielded as one ``TarDamage`` (``tar_corrupt``) with their offset and length, so nothing is skipped
  silently. Zero blocks (end-of-archive markers, also between concatenated archives) carry no data and
  are passed over; anything non-zero after them is read like the rest.
- checks a member's declared size BEFORE reading it: above ``max_member_bytes`` its data is skipped in
  chunks and the member comes back with ``tar_member_too_large``; GNU or pax sparse members (whose
  expanded size can be anything) are never expanded (``tar_member_unsupported``).
- bounds pax / GNU long-name headers at ``max_header_bytes`` and the whole stream at ``max_total_bytes``
  (``tar_too_large`` at the offset where reading stopped).
- yields non-regular members (symlinks, hard links, directories, FIFOs, devices) as members without
  data and with their ``kind``, so a caller can count what it cannot use.
- reports a stream that ends inside a member or a header as ``tar_truncated``.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BLOCK = tarfile.BLOCKSIZE
TAR_CORRUPT = "tar_corrupt"
TAR_TRUNCATED = "tar_truncated"
TAR_TOO_LARGE = "tar_too_large"
TAR_MEMBER_TOO_LARGE = "tar_member_too_large"
TAR_MEMBER_UNSUPPORTED = "tar_member_unsupported"

_ZERO_BLOCK = bytes(BLOCK)
_CHUNK = 1 << 20
_REGULAR = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE})
_KINDS = {
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.DIRTYPE: "directory",
    tarfile.FIFOTYPE: "fifo",
    tarfile.CHRTYPE: "device",
    tarfile.BLKTYPE: "device",
}
_PAX = frozenset({tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE})
# What a checksum field may hold: octal digits, spaces, NULs. A cheap filter before frombuf while
# scanning damaged bytes block by block.
_CHECKSUM_CHARS = bytes(range(256)).translate(None, b"01234567 \0")


@dataclass(frozen=True)
class TarMember:
    """One member: ``data`` when it is a regular file that was read, else None with ``problem`` or ``kind``.

    ``offset`` is where its first header (pax / long-name headers included) starts in the stream.
    """

    name: str
    offset: int
    kind: str = "file"  # file, symlink, hardlink, directory, fifo, device, other
    data: bytes | None = None
    problem: str | None = None  # TAR_MEMBER_TOO_LARGE, TAR_MEMBER_UNSUPPORTED, TAR_TRUNCATED
    detail: str = ""


@dataclass(frozen=True)
class TarDamage:
    """Bytes ``offset .. offset + length`` that hold no readable member: ``reason`` says why."""

    offset: int
    length: int
    reason: str  # TAR_CORRUPT, TAR_TRUNCATED, TAR_TOO_LARGE
    detail: str


@dataclass(frozen=True)
class TarLimits:
    """Bounds on what one tar may cost. ``max_member_bytes``: a member's declared data size (the same
    bound as a download); ``max_header_bytes``: a pax or GNU long-name header's data; ``max_total_bytes``:
    the (decompressed) stream as a whole."""

    max_member_bytes: int = 20 * 1024 * 1024
    max_header_bytes: int = 1 << 20
    max_total_bytes: int = 1 << 40

    def __post_init__(self) -> None:
        if min(self.max_member_bytes, self.max_header_bytes, self.max_total_bytes) <= 0:
            raise ValueError("TarLimits: every bound must be positive")


class _Blocks:
    """The stream with its position, exact reads, chunked skips and push-back of read bytes."""

    def __init__(self, stream: Any, max_total: int) -> None:
        self._stream = stream
        self._back = b""
        self._max_total = max_total
        self.pos = 0
        self.read_total = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the stream."""
        parts, wanted = [], size
        if self._back:
            head, self._back = self._back[:wanted], self._back[wanted:]
            parts.append(head)
            wanted -= len(head)
        while wanted > 0:
            chunk = self._stream.read(min(wanted, _CHUNK))
            if not chunk:
                break
            self.read_total += len(chunk)
            if self.read_total > self._max_total:
                raise _TooLarge()
            parts.append(chunk)
            wanted -= len(chunk)
        data = b"".join(parts)
        self.pos += len(data)
        return data

    def skip(self, size: int) -> int:
        """Skips ``size`` bytes in chunks (never holding them); returns how many there were."""
        skipped = 0
        while skipped < size:
            got = len(self.read(min(_CHUNK, size - skipped)))
            if not got:
                break
            skipped += got
        return skipped

    def unread(self, data: bytes) -> None:
        self._back = data + self._back
        self.pos -= len(data)


class _TooLarge(Exception):
    pass


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _header(block: bytes) -> tarfile.TarInfo | None:
    """The header in ``block``, or None when it is not a valid one (bad checksum, bad numbers)."""
    if block[148:156].translate(None, _CHECKSUM_CHARS) != block[148:156]:
        return None
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return None
    return info if info.size >= 0 else None


def _parse_pax(data: bytes) -> dict[str, str] | None:
    """pax records ``"LEN key=value\\n"``; None when they are malformed."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding after the last record
            break
        space = data.find(b" ", pos, pos + 24)
        if space < 0 or not data[pos:space].isdigit():
            return None
        length = int(data[pos:space])
        record = data[pos : pos + length]
        if length <= space - pos + 1 or len(record) != length or not record.endswith(b"\n"):
            return None
        key, equals, value = record[space - pos + 1 : -1].partition(b"=")
        if not equals:
            return None
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _pax_size(records: dict[str, str]) -> int | None:
    value = records.get("size")
    if value is None:
        return None
    return int(value) if value.isdigit() else -1


class _Reader:
    def __init__(self, stream: Any, limits: TarLimits) -> None:
        self._blocks = _Blocks(stream, limits.max_total_bytes)
        self._limits = limits
        self._damage_start: int | None = None

    def members(self) -> Iterator[TarMember | TarDamage]:
        try:
            yield from self._members()
        except _TooLarge:
            yield from self._close_damage(self._blocks.pos)
            at = self._blocks.pos
            yield TarDamage(
                at, 0, TAR_TOO_LARGE, f"stopped at byte {at}: above {self._limits.max_total_bytes} bytes"
            )

    def _close_damage(self, end: int) -> Iterator[TarDamage]:
        if self._damage_start is not None and end > self._damage_start:
            start, self._damage_start = self._damage_start, None
            yield TarDamage(start, end - start, TAR_CORRUPT, f"bytes {start}-{end}: no valid tar header")
        self._damage_start = None

    def _members(self) -> Iterator[TarMember | TarDamage]:
        blocks = self._blocks
        extended: dict[str, str] = {}
        long_name: str | None = None
        first_offset: int | None = None
        while True:
            start = blocks.pos
            block = blocks.read(BLOCK)
            if len(block) < BLOCK:
                if block.strip(b"\0") or (self._damage_start is not None):
                    yield from self._close_damage(start)
                    if block.strip(b"\0"):
                        yield TarDamage(start, len(block), TAR_TRUNCATED, "stream ends inside a header block")
                if first_offset is not None:
                    yield TarDamage(first_offset, start - first_offset, TAR_TRUNCATED,
                                    "stream ends after an extended header")  # fmt: skip
                return
            if block == _ZERO_BLOCK:
                yield from self._close_damage(start)
                self._skip_zeros()
                continue
            info = _header(block)
            if info is None:
                if self._damage_start is None:
                    self._damage_start = start
                extended, long_name, first_offset = {}, None, None
                continue
            yield from self._close_damage(start)
            offset = start if first_offset is None else first_offset
            kind_byte = info.type
            if kind_byte in _PAX or kind_byte in (tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME,
                                                  tarfile.GNUTYPE_LONGLINK):  # fmt: skip
                data = self._header_data(info, start)
                if isinstance(data, TarDamage):
                    yield data
                    extended, long_name, first_offset = {}, None, None
                    if data.reason == TAR_TRUNCATED:
                        return
                    continue
                if kind_byte in _PAX:
                    parsed = _parse_pax(data)
                    if parsed is None:
                        yield TarDamage(start, blocks.pos - start, TAR_CORRUPT, "malformed pax header")
                        extended, long_name, first_offset = {}, None, None
                        continue
                    extended.update(parsed)
                elif kind_byte == tarfile.GNUTYPE_LONGNAME:
                    long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                first_offset = offset
                continue
            name = extended.get("path") or long_name or info.name
            size = _pax_size(extended)
            sparse = kind_byte == tarfile.GNUTYPE_SPARSE or any(k.startswith("GNU.sparse.") for k in extended)
            extended, long_name, first_offset = {}, None, None
            if size is None:
                size = info.size
            if size < 0:
                yield TarDamage(offset, blocks.pos - offset, TAR_CORRUPT, f"{name}: bad pax size")
                continue
            member = self._member(info, name, offset, size, sparse, block)
            yield member
            if member.problem == TAR_TRUNCATED:
                return

    def _skip_zeros(self) -> None:
        """Passes over a run of zero blocks in large chunks, stopping at the first block that is not zero."""
        blocks = self._blocks
        while True:
            chunk = blocks.read(_CHUNK)
            if not chunk:
                return
            rest = chunk.lstrip(b"\0")
            if rest:
                aligned = (len(chunk) - len(rest)) // BLOCK * BLOCK
                blocks.unread(chunk[aligned:])
                return
            if len(chunk) % BLOCK:  # the stream ended inside a zero block: nothing is lost in zeros
                return

    def _header_data(self, info: tarfile.TarInfo, start: int) -> bytes | TarDamage:
        blocks = self._blocks
        if info.size > self._limits.max_header_bytes:
            skipped = blocks.skip(_padded(info.size))
            reason = TAR_CORRUPT if skipped == _padded(info.size) else TAR_TRUNCATED
            return TarDamage(start, blocks.pos - start, reason, f"extended header of {info.size} bytes")
        data = blocks.read(_padded(info.size))
        if len(data) < info.size:
            return TarDamage(start, blocks.pos - start, TAR_TRUNCATED, "stream ends inside a header")
        return data[: info.size]

    def _member(
        self, info: tarfile.TarInfo, name: str, offset: int, size: int, sparse: bool, block: bytes
    ) -> TarMember:
        blocks = self._blocks
        kind_byte = info.type
        if kind_byte == tarfile.GNUTYPE_SPARSE:
            # Old GNU sparse: more 512-byte maps follow while byte 504 (482 in the first) says so.
            extended = bool(block[482])
            while extended:
                more = blocks.read(BLOCK)
                if len(more) < BLOCK:
                    return TarMember(name, offset, "file", None, TAR_TRUNCATED, "stream ends in a sparse map")
                extended = bool(more[504])
        if kind_byte in _KINDS:
            return TarMember(name, offset, _KINDS[kind_byte], detail=info.linkname)
        if sparse:
            expanded = info._sparse_structs[2] if kind_byte == tarfile.GNUTYPE_SPARSE else size
            got = blocks.skip(_padded(size))
            problem = TAR_MEMBER_UNSUPPORTED if got == _padded(size) else TAR_TRUNCATED
            return TarMember(name, offset, "file", None, problem, f"sparse file ({expanded} bytes expanded)")
        kind = "file" if kind_byte in _REGULAR else "other"
        if size > self._limits.max_member_bytes:
            got = blocks.skip(_padded(size))
            problem = TAR_MEMBER_TOO_LARGE if got == _padded(size) else TAR_TRUNCATED
            detail = f"{size} bytes declared, above {self._limits.max_member_bytes}"
            return TarMember(name, offset, kind, None, problem, detail)
        data = blocks.read(size)
        if len(data) < size:
            return TarMember(name, offset, kind, None, TAR_TRUNCATED, f"{len(data)} of {size} bytes")
        blocks.skip(_padded(size) - size)
        if kind != "file":
            return TarMember(name, offset, kind, None, None, f"type {kind_byte!r}")
        return TarMember(name, offset, kind, data)


def read_tar(stream: Any, limits: TarLimits = TarLimits()) -> Iterator[TarMember | TarDamage]:
    """Every member and every damaged range of the (already decompressed) tar ``stream``, in order.

    ``stream`` needs only ``read(size)``. Never raises for bad bytes; an error of the stream itself
    (a failing network read) passes through.
    """
    return _Reader(stream, limits).members()
