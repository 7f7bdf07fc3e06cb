"""Checks the launcher makes before a run, each a one-line ``OptionError``: can the installed Beam
filesystems reach a path, and does the first input file have the columns the flags name."""

from __future__ import annotations

import importlib
from typing import Any

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from pipelines.read import Columns, first_columns

# Schemes Beam reads only with an optional extra: the module its filesystem needs, and what installs it.
_SCHEME_EXTRAS = {
    "gs": ("google.cloud.storage", "the gcp extra (pip install 'alt-text-curation[gcp]')"),
    "s3": ("boto3", "the aws extra (pip install 'alt-text-curation[aws]')"),
    "hdfs": ("hdfs", "Beam's hadoop extra (pip install 'apache-beam[hadoop]==2.77.0')"),
    "azfs": ("azure.storage.blob", "Beam's azure extra (pip install 'apache-beam[azure]==2.77.0')"),
}


class OptionError(ValueError):
    """A user mistake in the options; the message is one line that says what to fix."""


def fail(message: str) -> None:
    raise OptionError(message)


def check_columns(unit: Any, columns: Columns) -> None:
    """The first input file has the URL, caption (and key) columns the flags name (tables only)."""
    found = first_columns(unit)
    if found is None:
        return
    named = [("--url_column", columns.url), ("--caption_column", columns.caption)]
    if columns.key is not None:
        named.append(("--key_column", columns.key))
    for flag, name in named:
        if name not in found:
            have = ", ".join(sorted(found)[:8]) or "none"
            fail(f"{flag} {name}: {unit.source} has no such column (it has: {have}); pass {flag}=NAME")


def check_filesystem(path: str, verb: str) -> None:
    """Raises OptionError (``cannot read gs://b/x: install the gcp extra ...``) when no installed Beam
    filesystem can reach ``path``; local paths always pass."""
    scheme = FileSystems.get_scheme(path)
    if scheme is None:
        return
    module, install = _SCHEME_EXTRAS.get(scheme, ("", ""))
    if module and not _importable(module):
        raise OptionError(f"cannot {verb} {path}: install {install} or use a local path")
    try:
        FileSystems.get_filesystem(path)
    except (ValueError, OSError) as error:
        if not module:  # Beam's own message here always suggests the gcp extra, whatever the scheme
            raise OptionError(
                f"cannot {verb} {path}: no filesystem for {scheme}://; use a local path, gs://, s3://, "
                "hdfs:// or azfs://"
            ) from None
        raise OptionError(f"cannot {verb} {path}: {first_line(error)}") from None


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # missing, or installed but broken (a failing import deep inside): reinstall either way
        return False
    return True


def first_line(error: Exception) -> str:
    """The innermost cause's message: BeamIOError nests one error per path inside its own text."""
    while isinstance(error, BeamIOError) and len(error.exception_details or {}) == 1:
        error = next(iter(error.exception_details.values()))
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
