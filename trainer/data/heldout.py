"""Held-out data in fixed order for evaluation: every sample of every shard once, no augmentation."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

from trainer.data.samples import BatchCollator, SampleProcessor
from trainer.data.shards import FailureCounter, sequential


def heldout_batches(
    urls: list[str],
    processor: SampleProcessor,
    collator: BatchCollator,
    batch_size: int,
    failures: FailureCounter,
    expected: Mapping[str, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """Batches of up to ``batch_size`` (the last may be smaller); bad samples are counted in ``failures``."""
    rng = random.Random(0)  # unused by evaluation transforms, which are deterministic
    samples = []
    for raw in sequential(urls, failures, expected):
        item = processor(raw, rng)
        if isinstance(item, str):
            failures[item] += 1
            continue
        samples.append(item)
        if len(samples) == batch_size:
            yield collator(samples)
            samples = []
    if samples:
        yield collator(samples)
