"""``file://`` image URLs (``--allow_file_urls --file_url_root DIR``): only regular files under one folder.

A pool is untrusted input: without a root, ``file:///etc/shadow`` or a worker's credentials file would
be read into a shard, and a FIFO (``file:///dev/stdin``, a named pipe) would block a fetch thread
forever. So the path is resolved (symlinks included) and must lie under ``root``; the file is opened
non-blocking and without following a final symlink, and anything but a regular file is refused before
a byte is read.
"""

from __future__ import annotations

import mimetypes
import os
import stat
import urllib.request
from typing import NamedTuple
from urllib.parse import urlsplit

FILE_URL_OUTSIDE_ROOT = "file_url_outside_root"
FILE_NOT_REGULAR = "file_not_regular"
URL_INVALID = "url_invalid"
FETCH_FAILED = "fetch_failed"
RESPONSE_TOO_LARGE = "response_too_large"


class FileResult(NamedTuple):
    body: bytes | None
    content_type: str
    reason: str | None
    detail: str


def _problem(reason: str, detail: str) -> FileResult:
    return FileResult(None, "", reason, detail)


def read_file_url(url: str, root: str, max_bytes: int) -> FileResult:
    """The bytes of ``url`` (a ``file://`` URL) if it names a regular file under ``root``, else a reason."""
    try:
        parts = urlsplit(url)
        path = urllib.request.url2pathname(parts.path)
    except ValueError as error:
        return _problem(URL_INVALID, f"{error}")
    if parts.netloc not in ("", "localhost"):
        return _problem(URL_INVALID, f"file url with a remote host {parts.netloc[:100]!r}")
    if "\0" in path:
        return _problem(URL_INVALID, "NUL in a file path")
    real = os.path.realpath(path)
    base = os.path.realpath(root)
    if os.path.commonpath([real, base]) != base:
        return _problem(FILE_URL_OUTSIDE_ROOT, f"{real[:200]} is not under {base}")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as error:
        return _problem(FETCH_FAILED, f"{type(error).__name__}: {error}")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return _problem(FILE_NOT_REGULAR, f"{real[:200]} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > max_bytes:
            return _problem(RESPONSE_TOO_LARGE, f"file of {info.st_size} bytes")
        try:
            body = handle.read(max_bytes + 1)
        except OSError as error:
            return _problem(FETCH_FAILED, f"{type(error).__name__}: {error}")
    if len(body) > max_bytes:  # the file grew after fstat
        return _problem(RESPONSE_TOO_LARGE, f"file above {max_bytes} bytes")
    return FileResult(body, mimetypes.guess_type(real)[0] or "", None, "")
