"""Byte streams from outside: transparent, bounded decompression and bounded line splitting.

Pure (stdlib + zstandard): the curation job reads its inputs through these, and so can any other
reader of the same files (the trainer's loader). Nothing here holds more than a bounded number of bytes:

- ``open_decompressed(raw)``: sniffs gzip / bzip2 / xz / zstd magic bytes and returns a reader of the
  decompressed bytes (the stream itself when none matches). Corrupt compressed data raises
  ``CorruptInput`` (a ``ValueError``); an error from ``raw`` itself (network, permissions) passes through
  unchanged, so the caller can tell bad data from a failing store.
- ``bounded_lines(reader, max_line_bytes, max_total_bytes)``: the stream's lines; a line longer than
  ``max_line_bytes`` is yielded as ``LongLine(offset, size)`` without ever being held whole, and reading
  stops with ``InputTooLarge`` once ``max_total_bytes`` have been read (a decompression bomb of newlines
  or a 1 TB file costs at most that).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

_CHUNK = 1 << 20
_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"


class CorruptInput(ValueError):
    """The bytes are not what their format says (corrupt or truncated compressed data)."""


class InputTooLarge(ValueError):
    """More bytes than the caller's bound; ``offset`` is where reading stopped."""

    def __init__(self, offset: int, bound: int) -> None:
        super().__init__(f"stopped reading at byte {offset}: more than {bound} bytes")
        self.offset = offset
        self.bound = bound


@dataclass(frozen=True)
class LongLine:
    """A line that was not kept: it starts at ``offset`` and is ``size`` bytes long (newline excluded)."""

    offset: int
    size: int


class _Peeked:
    """``raw`` with its first bytes read already (to sniff the format) and served again."""

    def __init__(self, raw: BinaryIO, head: bytes) -> None:
        self._raw = raw
        self._head = head

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head = self._head if size < 0 else self._head[:size]
            self._head = self._head[len(head) :]
            if size < 0:
                return head + self._raw.read()
            return head
        return self._raw.read(size)


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor()


class _Decompressing:
    """Reads ``raw`` in chunks and decompresses at most what the caller asked for (multi-member aware)."""

    def __init__(self, raw: Any, kind: str) -> None:
        self._raw = raw
        self._kind = kind
        self._decoder = _decompressor(kind)
        self._pending = b""  # compressed bytes read from raw, not yet given to the decoder
        self._raw_done = False

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(_CHUNK), b""))
        while True:
            if self._decoder_finished():
                if not self._pending:
                    self._fill()
                if not self._pending:
                    return b""
                self._decoder = _decompressor(self._kind)  # a concatenated member (``cat a.gz b.gz``)
            if not self._pending and self._needs_input():
                self._fill()
                if not self._pending:
                    if self._decoder_finished():
                        return b""
                    raise CorruptInput(f"{self._kind} stream ends before its end marker")
            try:
                out = self._decode(size)
            except (zlib.error, OSError, EOFError, lzma.LZMAError) as error:
                raise CorruptInput(f"{self._kind}: {error}") from None
            if out:
                return out

    def _fill(self) -> None:
        if not self._raw_done:
            chunk = self._raw.read(_CHUNK)
            self._raw_done = not chunk
            self._pending += chunk

    def _decoder_finished(self) -> bool:
        return bool(self._decoder.eof)

    def _needs_input(self) -> bool:
        if self._kind == "gzip":
            return not self._decoder.unconsumed_tail
        return bool(self._decoder.needs_input)

    def _decode(self, size: int) -> bytes:
        decoder = self._decoder
        if self._kind == "gzip":
            data = decoder.unconsumed_tail + self._pending if decoder.unconsumed_tail else self._pending
            out = decoder.decompress(data, size)
            self._pending = decoder.unused_data if decoder.eof else b""
            return out
        out = decoder.decompress(self._pending, max_length=size)
        self._pending = decoder.unused_data if decoder.eof else b""
        return out


class _Zstd:
    def __init__(self, raw: Any) -> None:
        import zstandard

        self._error = zstandard.ZstdError
        self._reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)

    def read(self, size: int = -1) -> bytes:
        try:
            return self._reader.read(size)
        except self._error as error:
            raise CorruptInput(f"zstd: {error}") from None


def compression_of(head: bytes) -> str | None:
    """The compression the first bytes of a stream announce ("gzip", "bzip2", "xz", "zstd"), or None."""
    for magic, kind in ((_GZIP, "gzip"), (_BZIP2, "bzip2"), (_XZ, "xz"), (_ZSTD, "zstd")):
        if head.startswith(magic):
            return kind
    return None


def open_decompressed(raw: BinaryIO) -> Any:
    """A reader (``read(size)``) of ``raw``'s bytes, decompressed when they start with a known magic."""
    head = raw.read(8)
    stream = _Peeked(raw, head)
    kind = compression_of(head)
    if kind is None:
        return stream
    if kind == "zstd":
        return _Zstd(stream)
    return _Decompressing(stream, kind)


def bounded_lines(
    reader: Any, max_line_bytes: int, max_total_bytes: int
) -> Iterator[tuple[int, bytes | LongLine]]:
    """``(offset, line)`` for every line (newline stripped, ``\\r\\n`` kept as ``\\r``), or a ``LongLine``.

    Raises ``InputTooLarge`` past ``max_total_bytes``. Memory: one chunk plus one line of at most
    ``max_line_bytes``.
    """
    buffer = b""
    offset = 0  # stream offset of buffer[0]
    skipping: int | None = None  # start offset of a line being skipped because it is too long
    total = 0
    while True:
        chunk = reader.read(_CHUNK)
        total += len(chunk)
        if total > max_total_bytes:
            raise InputTooLarge(max_total_bytes, max_total_bytes)
        if not chunk:
            if skipping is not None:
                yield skipping, LongLine(skipping, offset + len(buffer) - skipping)
            elif buffer:
                yield offset, buffer
            return
        buffer += chunk
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            if skipping is not None:
                yield skipping, LongLine(skipping, offset + end - skipping)
                skipping = None
            elif end - start > max_line_bytes:
                yield offset + start, LongLine(offset + start, end - start)
            else:
                yield offset + start, buffer[start:end]
            start = end + 1
        rest = buffer[start:]
        if skipping is None and len(rest) > max_line_bytes:
            skipping = offset + start  # drop what is held: the line is too long whatever follows
        offset += start if skipping is None else len(buffer)
        buffer = b"" if skipping is not None else rest
