"""Whole-file writes for the dataset directory through Beam's FileSystems (local, gs://, s3://).

Every file is written under a temporary name and then renamed, so a reader never sees half a file
and a retried step simply writes the same bytes again.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

TMP_DIR = "_tmp"
T = TypeVar("T")


def join(directory: str, *names: str) -> str:
    return FileSystems.join(directory, *names)


def tmp_path(directory: str, name: str) -> str:
    """Where ``name`` is written before its rename into ``directory``."""
    return join(directory, TMP_DIR, name)


def write_bytes(directory: str, name: str, data: bytes) -> str:
    """Writes ``directory/name`` via a temporary file; returns ``name``."""
    staging = tmp_path(directory, name)
    with FileSystems.create(staging, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        handle.write(data)
    FileSystems.rename([staging], [join(directory, name)])
    return name


def write_json(directory: str, name: str, payload: Any) -> str:
    """Writes ``payload`` as stable JSON (sorted keys, 1-space indent, trailing newline); returns ``name``."""
    text = json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return write_bytes(directory, name, text.encode("utf-8"))


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def file_version(path: str) -> tuple[int, float]:
    """(size, last modified) of a file on any Beam filesystem: what a cache keyed by path must also key
    by, so a file rewritten at the same path (a second job in one process) is read again."""
    metadata = FileSystems.match([path])[0].metadata_list
    if not metadata:
        return -1, 0.0  # let the reader raise its own error
    return metadata[0].size_in_bytes, float(metadata[0].last_updated_in_seconds or 0.0)


class FileCache:
    """Objects loaded from files once per worker process and shared by its threads: one per path and
    options, loaded again (the old one dropped) when the file's version changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple, tuple[tuple[int, float], Any]] = {}

    def get(self, path: str, options: tuple, load: Callable[[str], T]) -> T:
        """What ``load`` makes of a local copy of ``path``, cached under ``(path, *options)``."""
        key, version = (path, *options), file_version(path)
        with self._lock:
            found = self._loaded.get(key)
            if found is None or found[0] != version:
                with local_copy(path) as local:
                    found = (version, load(local))
                self._loaded[key] = found
            return found[1]

    def __len__(self) -> int:
        return len(self._loaded)


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """``path`` itself when it is a local file, else a temporary local copy (for readers that take paths)."""
    if os.path.exists(path):
        yield path
        return
    suffix = os.path.splitext(path)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as local:
        local.write(read_bytes(path))
        local.flush()
        yield local.name
