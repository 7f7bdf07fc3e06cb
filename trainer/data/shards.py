"""Shard URLs → raw samples (dicts of bytes), with webdataset's tar iterators.

A shard URL is a local path, a ``pipe:`` command or an http(s) URL (webdataset's ``gopen``),
or any other ``scheme://`` URL that fsspec can open (``s3://``, ``gs://``, ``memory://`` …).
Bad shards are reported when they happen (one warning line per shard URL and process, on the
``trainer.data`` logger) and counted in a ``FailureCounter`` as the samples they lose: a shard
that does not open loses all the samples its manifest lists, a truncated or corrupt one those
after the point where reading failed (``expected - read``; 1 when no manifest says how many).
The stream goes on; only a stream where every shard fails in a row raises, since then nothing
could ever be trained on. Every count in a ``FailureCounter`` is therefore a number of samples.
"""

from __future__ import annotations

import contextlib
import logging
import random
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import urlparse

import fsspec
import webdataset as wds
from webdataset.gopen import gopen
from webdataset.tariterators import group_by_keys, tar_file_iterator

RawSample = dict[str, Any]
LOG = logging.getLogger("trainer.data")
# What a truncated or corrupt tar raises while it is read (gzip'd tars add zlib's and EOF errors).
READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, ValueError, KeyError)
_warned: set[tuple[str, str]] = set()
MAX_FAILED_OPENS_IN_A_ROW = 50
GOPEN_SCHEMES = ("", "file", "pipe", "http", "https")  # every other scheme://, e.g. gs or s3, goes to fsspec


class FailureCounter(Counter):
    """Counts skipped inputs by reason; also a webdataset exception handler (count and continue)."""

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


def warn_once(url: str, reason: str, message: str) -> None:
    """One warning line per (shard, reason) and process: resampled shards come round again."""
    if (url, reason) not in _warned:
        _warned.add((url, reason))
        LOG.warning("bad shard %s: %s", url, message)


def shard_samples(
    url: str, stream: BinaryIO, failures: FailureCounter, expected: int | None
) -> Iterator[RawSample]:
    """The samples of one opened shard; a read failure counts the samples it loses and ends the shard."""
    read = 0
    try:
        files = ({**member, "__url__": url} for member in tar_file_iterator(stream))
        for sample in group_by_keys(files):
            read += 1
            yield sample
    except READ_ERRORS as error:
        lost = max(expected - read, 0) if expected is not None else 1
        failures["shard_read_error"] += lost
        known = f"{lost} of its {expected} samples lost" if expected is not None else "at least 1 sample lost"
        warn_once(url, "read", f"unreadable after {read} samples ({type(error).__name__}: {error}); {known}")
    else:
        # tarfile ends a stream cut at a header boundary without an error: only the count shows it
        if expected is not None and read < expected:
            failures["shard_read_error"] += expected - read
            warn_once(
                url, "read", f"ended after {read} samples; {expected - read} of its {expected} samples lost"
            )
    finally:
        with contextlib.suppress(OSError):  # a pipe: command that failed says so on close
            stream.close()


def raw_samples(
    urls: Iterable[dict[str, str]], failures: FailureCounter, expected: Mapping[str, int] | None = None
) -> Iterator[RawSample]:
    """Tar members grouped by key into samples (``__key__``, ``jpg``, ``txt``, ``json`` … as bytes).

    ``expected``: samples per shard URL (from the manifest), so a bad shard counts what it loses.
    """
    expected = expected or {}
    in_a_row = 0
    for source in urls:
        url = source["url"]
        try:
            stream = open_shard(url)
        except (OSError, ValueError) as error:
            lost = expected.get(url, 1)
            failures["shard_open_error"] += lost
            warn_once(url, "open", f"cannot be opened ({error}); {lost} samples lost")
            in_a_row += 1
            if in_a_row >= MAX_FAILED_OPENS_IN_A_ROW:
                raise RuntimeError(
                    f"{in_a_row} shards in a row failed to open, last {url}: {error}"
                ) from error
            continue
        in_a_row = 0
        yield from shard_samples(url, stream, failures, expected.get(url))


def resampled_shuffled(
    urls: list[str],
    seed: int,
    shuffle_buffer: int,
    shuffle_initial: int,
    failures: FailureCounter,
    expected: Mapping[str, int] | None = None,
) -> Iterator[RawSample]:
    """An endless stream: shards drawn with replacement, samples mixed in a shuffle buffer.

    Both draws use RNGs seeded only by ``seed``, so the stream is a pure function of
    (urls, seed, buffer sizes): replaying it reproduces it sample for sample.
    """
    shards = wds.ResampledShards(urls, seed=seed, worker_seed=_no_worker_seed, deterministic=True)
    samples = raw_samples(iter(shards), failures, expected)
    if shuffle_buffer <= 1:
        return samples
    return wds.shuffle(shuffle_buffer, initial=shuffle_initial, rng=random.Random(seed))(samples)


def sequential(
    urls: list[str], failures: FailureCounter, expected: Mapping[str, int] | None = None
) -> Iterator[RawSample]:
    """Each shard once, in order: the evaluation reader."""
    return raw_samples(({"url": url} for url in urls), failures, expected)


def _no_worker_seed() -> int:
    # The caller's seed already encodes (seed, rank, stream, segment); webdataset must not mix in
    # its own rank/worker guess.
    return 0
