"""What ``--output`` may be, and the only files ``--overwrite`` may delete.

Checked before anything runs (``check_output``), and nothing is deleted until every option is valid
and the pipeline is built (``remove_previous``, called by ``pipelines.job.run``):

- ``--output`` must be a folder (or not exist yet, under a writable folder), and no ``--input`` file
  may lie inside it (the job would write its shards over them);
- a folder with a ``manifest.json`` holds a dataset of this job: refused without ``--overwrite``; with
  it, exactly the files that manifest lists are deleted (its shards by name, ``sizes.json``,
  ``stats.json``, … and ``rejects/rejects-*-of-*.parquet``), and nothing else: not the user's other
  files, not a shard the manifest does not name, never a path outside the folder;
- a folder holding files with this job's names (``*.tar``, ``stats.json``, …) but no manifest is not a
  finished dataset of this job and is refused either way: ``--overwrite`` cannot tell those files apart
  from the user's.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable

from apache_beam.io.filesystems import FileSystems

from contract.files import (
    EVAL_BLOCKLIST_FILE,
    EXAMPLES_FILE,
    MANIFEST_FILE,
    QUERY_COUNTS_FILE,
    REJECTS_DIR,
    REPORT_FILE,
    SIZES_FILE,
    STATS_FILE,
    TOKENIZER_FILE,
    VOCABULARY_FILE,
)
from pipelines.files import TMP_DIR, join

DATASET_FILES = (
    SIZES_FILE,
    STATS_FILE,
    VOCABULARY_FILE,
    TOKENIZER_FILE,
    QUERY_COUNTS_FILE,
    REPORT_FILE,
    EVAL_BLOCKLIST_FILE,
    EXAMPLES_FILE,
)
_SHARD = re.compile(r"\d{5,}\.tar")
_REJECTS = re.compile(r"rejects-\d{5}-of-\d{5}\.parquet")


def _is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) is None


def _inside(path: str, folder: str) -> bool:
    if _is_local(path) and _is_local(folder):
        path, folder = os.path.realpath(path), os.path.realpath(folder)
        return os.path.commonpath([path, folder]) == folder
    return path.rstrip("/").startswith(folder.rstrip("/") + "/")


def _check_local_folder(output: str, fail: Callable[[str], None]) -> None:
    if os.path.exists(output) and not os.path.isdir(output):
        fail(f"--output {output} is a file: name a folder for the dataset")
    parent = os.path.abspath(output)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        fail(f"--output {output}: {parent} is a file, so the folder cannot be made")
    if not os.access(parent, os.W_OK | os.X_OK):
        fail(f"--output {output}: {parent} is not writable")


def _listed(manifest: dict) -> list[str]:
    """The files a manifest says its run wrote, as names inside the folder (anything else is ignored)."""
    names = [MANIFEST_FILE]
    for shard in manifest.get("shards", []):
        name = shard.get("name") if isinstance(shard, dict) else None
        if isinstance(name, str) and _SHARD.fullmatch(name):
            names.append(name)
    files = manifest.get("files", {})
    for name in files.values() if isinstance(files, dict) else []:
        if name in DATASET_FILES:
            names.append(name)
    return names


def _existing(output: str, names: Iterable[str]) -> list[str]:
    patterns = [join(output, name) for name in names]
    return sorted(m.path for result in FileSystems.match(patterns) for m in result.metadata_list)


def _rejects_files(output: str) -> list[str]:
    found = FileSystems.match([join(output, REJECTS_DIR, "*")])[0].metadata_list
    return sorted(m.path for m in found if _REJECTS.fullmatch(m.path.rsplit("/", 1)[-1]))


def check_output(
    output: str, inputs: Iterable[str], overwrite: bool, fail: Callable[[str], None]
) -> tuple[str, ...]:
    """Validates ``--output`` (``fail(message)`` must raise); returns the files ``--overwrite`` will delete."""
    if _is_local(output):
        _check_local_folder(output, fail)
    for path in inputs:
        if _inside(path, output):
            fail(f"--input {path} lies inside --output {output}: write the dataset to another folder")
    manifest_path = join(output, MANIFEST_FILE)
    if not FileSystems.exists(manifest_path):
        ours = _existing(output, [*DATASET_FILES, "*.tar"]) + _rejects_files(output)
        if ours:
            names = ", ".join(sorted({p.rsplit("/", 1)[-1] for p in ours})[:4])
            fail(
                f"--output {output} holds files this job writes ({names}) but no manifest.json, so they are "
                "not a dataset of this job: choose an empty folder, or move them away yourself"
            )
        return ()
    if not overwrite:
        fail(f"--output {output} already holds a dataset (manifest.json): pass --overwrite to replace it")
    try:
        with FileSystems.open(manifest_path) as handle:
            manifest = json.loads(handle.read())
    except (ValueError, OSError) as error:
        fail(
            f"--output {output}: manifest.json is unreadable ({type(error).__name__}), so --overwrite cannot tell which files are the dataset's; remove them yourself"
        )
    if not isinstance(manifest, dict):
        fail(f"--output {output}: manifest.json is not a dataset manifest; remove the old dataset yourself")
    files = _existing(output, _listed(manifest))
    if REJECTS_DIR + "/" in (manifest.get("files") or {}).values():
        files += _rejects_files(output)
    return tuple(files)


def remove_previous(files: Iterable[str], output: str) -> None:
    """Deletes the previous dataset's files ``check_output`` listed (and the job's own staging folder)."""
    stale = [path for path in files if FileSystems.exists(path)]
    staging = join(output, TMP_DIR)
    if stale:
        FileSystems.delete(stale)
    if stale and FileSystems.exists(staging):
        FileSystems.delete([staging])
