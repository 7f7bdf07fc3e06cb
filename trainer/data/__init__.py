"""The trainer's data side: dataset metadata, the replayable training stream, held-out batches.

``build_train_batches`` wires a ``DataConfig`` into ``trainer.data.stream`` (read that module's
docstring for how exact resume works); ``to_device`` finishes a batch on the training device.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from trainer.config import DataConfig
from trainer.data.meta import DatasetError, DatasetMeta, resolve_dataset
from trainer.data.samples import BatchCollator, SampleProcessor
from trainer.data.stream import StreamConfig, TrainBatches, make_train_batches
from trainer.data.text import CaptionTokenizer
from trainer.data.transforms import CropSpec, normalize_images

__all__ = [
    "BatchCollator",
    "CaptionTokenizer",
    "DatasetError",
    "DatasetMeta",
    "SampleProcessor",
    "TrainBatches",
    "build_train_batches",
    "resolve_dataset",
    "stream_config",
    "to_device",
]


def stream_config(data: DataConfig, meta: DatasetMeta, seed: int, rank: int) -> StreamConfig:
    """One stream per worker; the segment length rounded up to a multiple of the stream count."""
    streams = max(1, data.workers)
    segment = math.ceil(data.segment_steps / streams) * streams
    return StreamConfig(
        meta.shard_urls,
        seed,
        rank,
        streams,
        segment,
        data.batch_size,
        data.shuffle_buffer,
        data.shuffle_initial,
        tuple(sorted(meta.shard_samples.items())),
    )


def build_train_batches(
    data: DataConfig,
    meta: DatasetMeta,
    *,
    image_size: int,
    context_length: int | None,
    hflip: bool,
    seed: int,
    rank: int,
    state: dict[str, Any] | None = None,
    pin_memory: bool = False,
) -> TrainBatches:
    """This rank's training batches, from the start or from a checkpointed data position."""
    tokenizer = (
        CaptionTokenizer(meta.tokenizer_json, context_length)
        if meta.tokenizer_json and context_length
        else None
    )
    vocabulary = meta.vocabulary
    augment = data.augment
    crop = CropSpec(image_size, augment.scale, augment.ratio, hflip, augment.hue, augment.grayscale)
    processor = SampleProcessor(image_size, crop, tokenizer is not None, vocabulary)
    collator = BatchCollator(tokenizer, len(vocabulary.ids) if vocabulary else None)
    config = stream_config(data, meta, seed, rank)
    return make_train_batches(config, processor, collator, data.workers, state, pin_memory)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Moves tensors to ``device`` and turns uint8 images into CLIP-normalised floats there."""
    moved = {
        key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
        for key, value in batch.items()
    }
    moved["image"] = normalize_images(moved["image"])
    return moved
