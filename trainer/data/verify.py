"""``--verify-shards``: every shard's size and sha256 against its manifest entry, before training.

Shards are read in 1 MiB chunks through fsspec (local paths and remote URLs alike), so memory stays
bounded whatever their size; a progress bar counts the bytes. Problems come back as one line per
shard; the trainer stops on any with a one-line error naming the first.
"""

from __future__ import annotations

import hashlib

import fsspec
from tqdm import tqdm

from trainer import distributed
from trainer.data.meta import DatasetError, DatasetMeta

CHUNK = 1 << 20


def shard_digest(url: str) -> tuple[int, str]:
    """(bytes, sha256 hex) of one shard."""
    digest, size = hashlib.sha256(), 0
    with fsspec.open(url, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def verify_shards(meta: DatasetMeta, progress: bool = True) -> list[str]:
    """One line per shard whose size or sha256 differs from the manifest, or that cannot be read."""
    problems = []
    total = sum(int(entry.get("bytes", 0)) for entry in meta.shard_entries.values())
    with tqdm(total=total, unit="B", unit_scale=True, desc="verify shards", disable=not progress) as bar:
        for url, entry in meta.shard_entries.items():
            try:
                size, sha256 = shard_digest(url)
            except OSError as error:
                problems.append(f"{url}: cannot be read ({error})")
                continue
            if size != entry.get("bytes"):
                problems.append(f"{url}: {size} bytes, the manifest says {entry.get('bytes')}")
            elif sha256 != entry.get("sha256"):
                problems.append(
                    f"{url}: sha256 {sha256[:12]}…, the manifest says {str(entry.get('sha256'))[:12]}…"
                )
            bar.update(int(entry.get("bytes", 0)))
    unlisted = len(meta.shard_urls) - len(meta.shard_entries)
    if unlisted:
        problems.append(
            f"{unlisted} shards come from shard specs without a manifest: nothing to verify them against"
        )
    return problems


def check_shards(meta: DatasetMeta, progress: bool) -> None:
    """Rank 0 verifies, every rank learns the outcome; raises DatasetError naming the first problem."""
    problems = verify_shards(meta, progress) if distributed.is_main_process() else None
    problems = next(p for p in distributed.gather_objects(problems) if p is not None)
    if problems:
        raise DatasetError(
            f"--verify-shards: {len(problems)} problem(s), first: {problems[0]}; re-copy the shards or re-run curate"
        )
