"""One raw sample → image, caption and synset indices; a list of those → a training batch.

A sample that cannot be used returns a short reason instead (``image_decode_error``,
``missing_image``, ``missing_caption``, ``bad_json``); the stream skips and counts it.
Batch layout: ``image`` uint8 [B, 3, S, S] (normalised later on the device), ``tokens`` long
[B, L] padded with 0, ``targets`` float multi-hot [B, C] over the kept synsets, ``key`` list.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from contract.files import CAPTION_MEMBER, META_MEMBER
from contract.vocabulary import ClassIndex
from trainer.data.text import CaptionTokenizer
from trainer.data.transforms import CropSpec, eval_image, train_image

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
# PIL's own failures on bad image bytes; anything else is a bug and must surface.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@dataclass
class Sample:
    key: str
    image: torch.Tensor
    caption: str
    synsets: list[int]


@dataclass
class SampleProcessor:
    """Decodes and augments one raw sample. ``crop=None`` means evaluation (resize + centre crop)."""

    image_size: int
    crop: CropSpec | None = None
    need_caption: bool = True
    classes: ClassIndex | None = None  # the kept synsets (CatLIP's targets); None: no targets

    def __call__(self, raw: dict[str, Any], rng: random.Random) -> Sample | str:
        data = next((raw[name] for name in IMAGE_KEYS if name in raw), None)
        if data is None:
            return "missing_image"
        try:
            meta = json.loads(raw[META_MEMBER]) if META_MEMBER in raw else {}
        except (ValueError, UnicodeDecodeError):
            return "bad_json"
        caption = (
            raw[CAPTION_MEMBER].decode("utf-8", "replace")
            if CAPTION_MEMBER in raw
            else meta.get("caption", "")
        )
        if self.need_caption and not caption.strip():
            return "missing_caption"
        try:
            image = train_image(data, self.crop, rng) if self.crop else eval_image(data, self.image_size)
        except DECODE_ERRORS:
            return "image_decode_error"
        synsets = self.classes.multi_hot(meta.get("synsets", [])) if self.classes else []
        return Sample(raw.get("__key__", meta.get("key", "")), image, caption, synsets)


@dataclass
class BatchCollator:
    """Stacks samples into the batch layout; tokenises captions in the worker."""

    tokenizer: CaptionTokenizer | None
    num_classes: int | None

    def __call__(self, samples: list[Sample]) -> dict[str, Any]:
        batch: dict[str, Any] = {
            "image": torch.stack([sample.image for sample in samples]),
            "key": [sample.key for sample in samples],
        }
        if self.tokenizer is not None:
            batch["tokens"] = self.tokenizer([sample.caption for sample in samples])
        if self.num_classes:
            targets = torch.zeros(len(samples), self.num_classes)
            for row, sample in enumerate(samples):
                targets[row, sample.synsets] = 1.0
            batch["targets"] = targets
        return batch
