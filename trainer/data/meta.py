"""What the trainer needs from dataset directories: shard URLs, sample count, tokenizer, synsets.

A data entry is either a dataset directory (a local path or any fsspec URL holding
``manifest.json``) whose shards are those its manifest lists, or a shard spec: a ``pipe:``
command or a URL/path ending in ``.tar``, brace patterns allowed (``/d/{00000..00099}.tar``).
``tokenizer.json`` and ``vocabulary.json`` come from ``meta_dir`` (default: the first dataset
directory). V_tau is applied here, at load time: the kept synsets are those with
``count >= v_tau`` (the file's own ``kept`` flags when no override is given), in the file's
order, which is the class order of targets and of CatLIP's classifier rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
from webdataset.shardlists import expand_urls

from contract.files import MANIFEST_FILE as MANIFEST
from contract.files import TOKENIZER_FILE as TOKENIZER
from contract.files import VOCABULARY_FILE as VOCABULARY
from contract.vocabulary import ClassIndex, parse_json


class DatasetError(ValueError):
    """A data location or file the user must fix; the message is one line saying how."""


@dataclass(frozen=True)
class DatasetMeta:
    shard_urls: tuple[str, ...]
    total_samples: int | None
    tokenizer_json: str | None
    vocabulary: ClassIndex | None
    meta_dir: str | None
    # per shard URL, its manifest entry (samples, bytes, sha256); bare shard specs have none
    shard_entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def shard_samples(self) -> dict[str, int]:
        """Samples per shard URL as the manifests list them (what a bad shard loses)."""
        return {url: int(entry["samples"]) for url, entry in self.shard_entries.items()}


def is_shard_spec(entry: str) -> bool:
    return entry.startswith("pipe:") or ".tar" in entry.rstrip("/").rsplit("/", 1)[-1]


def join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def read_text(url: str) -> str | None:
    """The text of a local or fsspec file, or None when it does not exist."""
    try:
        with fsspec.open(url, "rt", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def read_manifest(directory: str) -> dict[str, Any]:
    text = read_text(join(directory, MANIFEST))
    if text is None:
        raise DatasetError(
            f"dataset dir {directory} has no {MANIFEST}: run curate first or pass --data DIR (a curated "
            "dataset directory) or shard URLs ending in .tar"
        )
    try:
        manifest = json.loads(text)
        shards = [shard["name"] for shard in manifest["shards"]]
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(
            f"{join(directory, MANIFEST)} is not a valid manifest ({error}): re-run curate"
        ) from error
    if not shards:
        raise DatasetError(f"{join(directory, MANIFEST)} lists no shards: the curation kept nothing")
    return manifest


def shards_of_directory(directory: str, manifest: dict[str, Any]) -> list[str]:
    urls = [join(directory, shard["name"]) for shard in manifest["shards"]]
    if "://" not in directory:
        missing = [url for url in urls if not Path(url).is_file()]
        if missing:
            raise DatasetError(
                f"{directory}: the manifest lists {missing[0]} but it is missing ({len(missing)} missing)"
            )
    return urls


def load_vocabulary(meta_dir: str, v_tau: int | None) -> ClassIndex:
    """``vocabulary.json`` of ``meta_dir`` (local or fsspec) as the class index at ``v_tau``."""
    url = join(meta_dir, VOCABULARY)
    text = read_text(url)
    if text is None:
        raise DatasetError(
            f"{meta_dir} has no {VOCABULARY}: CatLIP needs the synset vocabulary curate writes"
        )
    try:
        vocabulary = parse_json(text, url).classes(v_tau)
    except ValueError as error:
        raise DatasetError(f"{url} is not a valid vocabulary ({str(error).splitlines()[0]})") from error
    if not vocabulary.ids:
        raise DatasetError(f"no synset in {url} has count >= v_tau {vocabulary.v_tau}: lower data.v_tau")
    return vocabulary


def resolve_dataset(
    paths: list[str], meta_dir: str | None, v_tau: int | None, need_tokenizer: bool, need_vocabulary: bool
) -> DatasetMeta:
    """Shard URLs, sample count and metadata for ``paths``; raises DatasetError on a bad location."""
    if not paths:
        raise DatasetError("no training data given: pass --data DIR (a curated dataset directory)")
    urls: list[str] = []
    entries: dict[str, dict[str, Any]] = {}
    total: int | None = 0
    directories = []
    for entry in paths:
        if is_shard_spec(entry):
            expanded = expand_urls(entry)
            urls.extend(expanded)
            total = None  # a bare shard list does not say how many samples it holds
        else:
            manifest = read_manifest(entry)
            shard_urls = shards_of_directory(entry, manifest)
            urls.extend(shard_urls)
            entries.update(zip(shard_urls, manifest["shards"]))
            directories.append(entry)
            if total is not None:
                total += int(manifest.get("total_samples", sum(s["samples"] for s in manifest["shards"])))
    meta_dir = meta_dir or (directories[0] if directories else None)
    if meta_dir is None and (need_tokenizer or need_vocabulary):
        raise DatasetError(
            "shard URLs alone carry no tokenizer/vocabulary: also pass --meta-dir DIR (a dataset directory)"
        )
    tokenizer_json = None
    if need_tokenizer:
        tokenizer_json = read_text(join(meta_dir, TOKENIZER))
        if tokenizer_json is None:
            raise DatasetError(
                f"{meta_dir} has no {TOKENIZER}: two-tower models need the tokenizer curate trains"
            )
    vocabulary = load_vocabulary(meta_dir, v_tau) if need_vocabulary else None
    return DatasetMeta(tuple(urls), total, tokenizer_json, vocabulary, meta_dir, entries)
