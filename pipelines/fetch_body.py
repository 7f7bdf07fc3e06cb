"""Reading a response body within bounds, decoding ``Content-Encoding: gzip``/``deflate`` on the way.

The fetcher asks for ``identity`` (http.client's default), but servers send gzip anyway; a compressed
body is decoded with the same byte bound as a plain one, applied to the DECODED bytes (a 100 kB gzip
of zeros that expands to gigabytes stops at ``max_bytes``). Other encodings (br, zstd, compress, or
several stacked) are refused by name rather than passed on as image bytes that no decoder can read.
"""

from __future__ import annotations

import time
import zlib
from http import client as http_client
from typing import Any

_CHUNK = 64 * 1024
_DECODABLE = {"gzip": 31, "x-gzip": 31, "deflate": 15}


class ResponseTooLarge(Exception):
    pass


class BodyDeadlinePassed(Exception):
    pass


class EncodingUnsupported(Exception):
    pass


class EncodingInvalid(Exception):
    pass


def content_encoding(headers: Any) -> str:
    """The one encoding to undo ("" for identity); raises ``EncodingUnsupported`` for anything else."""
    names = [
        name.strip().lower()
        for value in headers.get_all("Content-Encoding", []) or []
        for name in value.split(",")
        if name.strip() and name.strip().lower() != "identity"
    ]
    if not names:
        return ""
    if len(names) > 1 or names[0] not in _DECODABLE:
        raise EncodingUnsupported(f"Content-Encoding {', '.join(names)[:100]}")
    return names[0]


class _Decoder:
    """zlib with the bound on its output; ``deflate`` accepts zlib-wrapped and raw streams alike."""

    def __init__(self, encoding: str, max_bytes: int) -> None:
        self._wbits = _DECODABLE[encoding]
        self._inner: Any = None
        self._max = max_bytes
        self.size = 0

    def feed(self, data: bytes) -> bytes:
        if self._inner is None:
            raw_deflate = self._wbits == 15 and data[:1] and (data[0] & 0x0F) != 8
            self._inner = zlib.decompressobj(-15 if raw_deflate else self._wbits)
        try:
            out = self._inner.decompress(data, self._max + 1 - self.size)
        except zlib.error as error:
            raise EncodingInvalid(f"bad compressed body: {error}") from None
        self.size += len(out)
        if self.size > self._max or self._inner.unconsumed_tail:
            raise ResponseTooLarge(f"body above {self._max} bytes once decoded")
        return out

    def finish(self) -> None:
        if self._inner is not None and not self._inner.eof:
            raise EncodingInvalid("compressed body ends before its end")


def read_body(response: Any, max_bytes: int, deadline: float, encoding: str = "") -> bytes:
    """Reads the body in chunks: refuses it past ``max_bytes`` (raw and decoded) and stops past
    ``deadline`` (monotonic seconds); undoes ``encoding`` (from ``content_encoding``)."""
    decoder = _Decoder(encoding, max_bytes) if encoding else None
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise BodyDeadlinePassed(f"still reading after the deadline ({size} bytes)")
        # read1: whatever has arrived, so a slow sender cannot keep one read waiting past the deadline.
        chunk = response.read1(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            missing = getattr(response, "length", None)
            if missing:  # read1 does not check it: the server closed before the length it declared
                raise http_client.IncompleteRead(b"", missing)
            if decoder is not None:
                if not size:
                    return b""
                decoder.finish()
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLarge(f"body above {max_bytes} bytes")
        chunks.append(decoder.feed(chunk) if decoder is not None else chunk)
