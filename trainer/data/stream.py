"""The training stream: endless, equal-sized, replayable batches on every rank.

Design (why a resumed run sees exactly the samples an uninterrupted one would)
-----------------------------------------------------------------------------
The batches of a rank are a pure function of (seed, rank, step), where ``step`` counts the
micro-batches this rank has consumed since the run began.

* **Streams.** A rank reads K = max(1, workers) independent streams; step ``s`` comes from
  stream ``s mod K``. PyTorch's DataLoader hands out an IterableDataset's items round-robin over
  its workers, so worker ``w`` of a loader started at step ``s0`` produces steps
  ``s0 + w, s0 + w + K, …``: worker order is step order. Every batch carries its step and the
  consumer checks it, so a change in that DataLoader behaviour fails loudly instead of silently.
* **Segments.** Steps are cut into segments of L = ``segment_steps`` (a multiple of K). At the
  start of segment ``e`` stream ``k`` builds its pipeline afresh from one seed,
  ``derive_seed(seed, rank, k, e)``: webdataset's ``ResampledShards`` draws shards with
  replacement, ``shuffle`` mixes samples in a buffer, and sample ``i`` of the segment gets its
  own augmentation RNG ``Random(f"{segment seed}/{i}")``. Nothing carries over between
  segments and no global RNG is touched (the DataLoader gets its own ``torch.Generator``).
* **Position.** Each batch reports ``(stream, segment, raw_end)``: how many raw samples its
  stream has pulled in this segment, bad ones included. The consumer (``TrainBatches``) keeps
  the position of the last batch it *consumed* per stream (prefetched batches do not count);
  the checkpoint stores it with the step. Resuming inside a segment replays the segment's raw
  stream up to ``raw_end`` through the shard draws and the shuffle buffer *without decoding*
  and continues from there; at a segment boundary there is nothing to replay. The replay is
  bounded by one segment of tar reads, so make ``checkpoint.every`` a multiple of
  ``segment_steps`` for instant resumes.
* **Equal batches.** Streams never end (shards are resampled), batches are always full and every
  rank runs the same number of steps, so no rank runs dry early and DDP never hangs on uneven
  shards. Samples that fail to decode are skipped and counted per reason in the batch's
  ``failures``, which the loop logs.

Exactness needs the same world size, workers, batch size, seed, segment length, shuffle buffer
and shard list as the checkpoint; ``restore_positions`` compares a fingerprint and otherwise
starts fresh streams at the resumed step (still deterministic from then on) with a warning.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from trainer.data.samples import BatchCollator, SampleProcessor
from trainer.data.shards import FailureCounter, resampled_shuffled

MAX_BAD_SAMPLES_IN_A_ROW = 1000


@dataclass(frozen=True)
class StreamConfig:
    urls: tuple[str, ...]
    seed: int
    rank: int
    streams: int
    segment_steps: int
    batch_size: int
    shuffle_buffer: int
    shuffle_initial: int
    # samples per shard URL from the manifests, so bad shards count the samples they lose
    shard_samples: tuple[tuple[str, int], ...] = ()

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a checkpointed position to mean the same samples."""
        fields = asdict(self)
        fields["urls"] = hashlib.sha256("\n".join(self.urls).encode()).hexdigest()[:16]
        del fields["shard_samples"]  # follows from the shards; not part of the stream's layout
        return fields


@dataclass(frozen=True)
class StreamPosition:
    """Where a stream stands after the last consumed batch: its segment and raw samples pulled."""

    segment: int
    raw_end: int


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed fixed by ``parts`` (stable across processes, unlike ``hash``)."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


class TrainStream(IterableDataset):
    """Yields collated batches for the steps of this worker's stream, from ``start_step`` on."""

    def __init__(
        self,
        config: StreamConfig,
        processor: SampleProcessor,
        collator: BatchCollator,
        start_step: int = 0,
        positions: dict[int, StreamPosition] | None = None,
    ) -> None:
        super().__init__()
        if config.segment_steps % config.streams:
            raise ValueError(
                f"segment_steps {config.segment_steps} must be a multiple of {config.streams} streams"
            )
        self.config = config
        self.processor = processor
        self.collator = collator
        self.start_step = start_step
        self.positions = dict(positions or {})

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if workers != self.config.streams:
            raise RuntimeError(f"the stream is planned for {self.config.streams} workers, got {workers}")
        return self._batches(self.start_step + worker)

    def _batches(self, step: int) -> Iterator[dict[str, Any]]:
        streams, length = self.config.streams, self.config.segment_steps
        while True:
            segment = step // length
            yield from self._segment(step % streams, segment, step)
            step = (segment + 1) * length + step % streams

    def _segment(self, stream: int, segment: int, step: int) -> Iterator[dict[str, Any]]:
        cfg = self.config
        seed = derive_seed(cfg.seed, cfg.rank, stream, segment)
        failures = FailureCounter()
        raw = resampled_shuffled(
            list(cfg.urls), seed, cfg.shuffle_buffer, cfg.shuffle_initial, failures, dict(cfg.shard_samples)
        )
        position = self.positions.get(stream)
        raw_index = position.raw_end if position and position.segment == segment else 0
        if raw_index:
            next(itertools.islice(raw, raw_index - 1, None))  # replay without decoding
            failures.take()  # those failures were counted before the checkpoint
        end, bad_in_a_row = (segment + 1) * cfg.segment_steps, 0
        while step < end:
            samples = []
            while len(samples) < cfg.batch_size:
                item = self.processor(next(raw), random.Random(f"{seed}/{raw_index}"))
                raw_index += 1
                if isinstance(item, str):
                    failures[item] += 1
                    bad_in_a_row += 1
                    if bad_in_a_row >= MAX_BAD_SAMPLES_IN_A_ROW:
                        raise RuntimeError(f"{bad_in_a_row} samples in a row were unusable: {dict(failures)}")
                    continue
                bad_in_a_row = 0
                samples.append(item)
            batch = self.collator(samples)
            batch["meta"] = {
                "step": step,
                "stream": stream,
                "segment": segment,
                "raw_end": raw_index,
                "failures": failures.take(),
            }
            yield batch
            step += cfg.streams


class TrainBatches:
    """The consumer side: checks the step order, tracks positions and failure counts."""

    def __init__(self, dataset: TrainStream, loader: DataLoader) -> None:
        self.dataset = dataset
        self.loader = loader
        self.step = dataset.start_step
        self.positions = dict(dataset.positions)
        self.failures: Counter[str] = Counter()
        self._iterator: Iterator[dict[str, Any]] | None = None

    def __iter__(self) -> TrainBatches:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._iterator is None:
            self._iterator = iter(self.loader)
        batch = next(self._iterator)
        meta = batch.pop("meta")
        if meta["step"] != self.step:
            raise RuntimeError(f"data stream out of order: expected step {self.step}, got {meta['step']}")
        self.positions[meta["stream"]] = StreamPosition(meta["segment"], meta["raw_end"])
        self.failures.update(meta["failures"])
        self.step += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "positions": {k: [p.segment, p.raw_end] for k, p in self.positions.items()},
            "failures": dict(self.failures),
            "fingerprint": self.dataset.config.fingerprint(),
        }

    def close(self) -> None:
        self._iterator = None  # drops the DataLoader iterator, which shuts its workers down


def restore_positions(state: dict[str, Any] | None, config: StreamConfig) -> dict[int, StreamPosition]:
    """Positions from a checkpointed ``TrainBatches.state_dict`` if it fits ``config``, else none."""
    if not state:
        return {}
    if state.get("fingerprint") != config.fingerprint():
        warnings.warn(
            "the data stream differs from the checkpoint's (world size, workers, batch size, seed or shards "
            "changed): resuming with fresh streams, not the exact samples of the interrupted run",
            stacklevel=2,
        )
        return {}
    return {int(k): StreamPosition(int(seg), int(raw)) for k, (seg, raw) in state["positions"].items()}


def make_train_batches(
    config: StreamConfig,
    processor: SampleProcessor,
    collator: BatchCollator,
    workers: int,
    state: dict[str, Any] | None = None,
    pin_memory: bool = False,
    prefetch_factor: int = 2,
) -> TrainBatches:
    """The DataLoader over a ``TrainStream`` (``workers`` processes, 0: in the trainer's process),
    started where a checkpointed ``TrainBatches.state_dict`` left off when ``state`` is given."""
    if config.streams != max(1, workers):
        raise ValueError(f"{workers} workers need {max(1, workers)} streams, the config has {config.streams}")
    start_step = int(state["step"]) if state else 0
    dataset = TrainStream(config, processor, collator, start_step, restore_positions(state, config))
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=prefetch_factor if workers else None,
        worker_init_fn=_single_threaded if workers else None,
        generator=torch.Generator(),  # keeps the trainer's global RNG untouched by the loader
        persistent_workers=False,
    )
    batches = TrainBatches(dataset, loader)
    batches.failures.update((state or {}).get("failures", {}))
    return batches


def _single_threaded(_worker_id: int) -> None:
    # Decoding is per-sample Python work; torch intra-op threads in workers only oversubscribe cores.
    torch.set_num_threads(1)
