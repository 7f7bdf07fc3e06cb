"""Shard URLs → raw samples (dicts of bytes), with webdataset's tar iterators.

A shard URL is a local path, a ``pipe:`` command or an http(s) URL (webdataset's ``gopen``),
or any other ``scheme://`` URL that fsspec can open (``s3://``, ``gs://``, ``memory://`` …).
Read errors are counted by reason in a ``FailureCounter`` and the stream goes on; only a
stream where every shard fails in a row raises, since then nothing could ever be trained on.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import urlparse

import fsspec
import webdataset as wds
from webdataset.gopen import gopen
from webdataset.tariterators import group_by_keys, tar_file_expander

RawSample = dict[str, Any]
MAX_FAILED_OPENS_IN_A_ROW = 50
GOPEN_SCHEMES = ("", "file", "pipe", "http", "https")  # every other scheme://, e.g. gs or s3, goes to fsspec


class FailureCounter(Counter):
    """Counts skipped inputs by reason; also a webdataset exception handler (count and continue)."""

    def handler(self, reason: str):
        def handle(_exn: Exception) -> bool:
            self[reason] += 1
            return True

        return handle

    def take(self) -> dict[str, int]:
        """The counts since the last ``take`` (then resets): what a batch reports."""
        counts = dict(self)
        self.clear()
        return counts


def open_shard(url: str) -> BinaryIO:
    """Opens a shard: webdataset's gopen for paths, ``pipe:`` and http(s); fsspec for other schemes."""
    scheme = urlparse(url).scheme
    if scheme in GOPEN_SCHEMES:
        return gopen(url, "rb")
    return fsspec.open(url, "rb").open()


def opened_shards(urls: Iterable[dict[str, str]], failures: FailureCounter) -> Iterator[dict[str, Any]]:
    """``{"url"}`` dicts → ``{"url", "stream"}``; unopenable shards are counted and skipped."""
    in_a_row = 0
    for source in urls:
        try:
            stream = open_shard(source["url"])
        except (OSError, ValueError) as error:
            failures["shard_open_error"] += 1
            in_a_row += 1
            if in_a_row >= MAX_FAILED_OPENS_IN_A_ROW:
                raise RuntimeError(
                    f"{in_a_row} shards in a row failed to open, last {source['url']}: {error}"
                ) from error
            continue
        in_a_row = 0
        yield {"url": source["url"], "stream": stream}


def raw_samples(urls: Iterable[dict[str, str]], failures: FailureCounter) -> Iterator[RawSample]:
    """Tar members grouped by key into samples (``__key__``, ``jpg``, ``txt``, ``json`` … as bytes)."""
    files = tar_file_expander(opened_shards(urls, failures), handler=failures.handler("shard_read_error"))
    return group_by_keys(files, handler=failures.handler("shard_read_error"))


def resampled_shuffled(
    urls: list[str], seed: int, shuffle_buffer: int, shuffle_initial: int, failures: FailureCounter
) -> Iterator[RawSample]:
    """An endless stream: shards drawn with replacement, samples mixed in a shuffle buffer.

    Both draws use RNGs seeded only by ``seed``, so the stream is a pure function of
    (urls, seed, buffer sizes): replaying it reproduces it sample for sample.
    """
    shards = wds.ResampledShards(urls, seed=seed, worker_seed=_no_worker_seed, deterministic=True)
    samples = raw_samples(iter(shards), failures)
    if shuffle_buffer <= 1:
        return samples
    return wds.shuffle(shuffle_buffer, initial=shuffle_initial, rng=random.Random(seed))(samples)


def sequential(urls: list[str], failures: FailureCounter) -> Iterator[RawSample]:
    """Each shard once, in order: the evaluation reader."""
    return raw_samples(({"url": url} for url in urls), failures)


def _no_worker_seed() -> int:
    # The caller's seed already encodes (seed, rank, stream, segment); webdataset must not mix in
    # its own rank/worker guess.
    return 0
