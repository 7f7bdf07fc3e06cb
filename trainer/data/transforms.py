"""Image decoding and augmentation with PIL, and the CLIP normalisation applied on the device.

Training: random resized crop (torchvision's algorithm; OpenCLIP trains CLIP with scale
(0.9, 1.0)) then an optional horizontal flip (ALIGN's recipe: random crop + flip). Evaluation:
resize the shorter side, centre crop. Workers hand over uint8 tensors; ``normalize_images``
turns them into CLIP-normalised floats on the training device, so the worker-to-trainer copy
stays 4× smaller and the arithmetic runs where it is cheap.

Randomness comes from a ``random.Random`` passed in per sample (seeded from the sample's place
in the stream), never from global state: that is what makes the data stream replayable.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class CropSpec:
    """Random resized crop: area fraction ``scale`` and aspect ``ratio`` ranges, flip, colour.

    ``hue``: the hue is rotated by a uniform draw from [-hue, hue] of the colour circle (0 = off,
    0.5 = any hue); ``grayscale``: the probability of dropping colour altogether (SimCLR's
    augmentations). Both make colour uninformative, so a model must tell images apart by other cues.
    """

    size: int
    scale: tuple[float, float] = (0.9, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = False
    hue: float = 0.0
    grayscale: float = 0.0


def decode_rgb(data: bytes, min_side: int) -> Image.Image:
    """Fully decodes an image as RGB; JPEG ``draft`` skips detail below ``min_side`` (raises on bad data)."""
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft("RGB", (min_side, min_side))
    return image.convert("RGB")  # convert() loads every pixel, so truncated files fail here


def random_resized_crop_box(
    width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float], rng: random.Random
) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box (10 tries, then a centre crop clamped to ``ratio``)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            return left, top, left + w, top + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def train_image(data: bytes, spec: CropSpec, rng: random.Random) -> torch.Tensor:
    """Decode + random resized crop + optional flip → uint8 tensor [3, size, size]."""
    image = decode_rgb(data, math.ceil(spec.size / math.sqrt(spec.scale[0])))
    box = random_resized_crop_box(image.width, image.height, spec.scale, spec.ratio, rng)
    image = image.resize((spec.size, spec.size), Image.Resampling.BICUBIC, box=box)
    if spec.hflip and rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if spec.hue > 0:
        image = rotate_hue(image, rng.uniform(-spec.hue, spec.hue))
    if spec.grayscale > 0 and rng.random() < spec.grayscale:
        image = image.convert("L").convert("RGB")
    return to_uint8_tensor(image)


def rotate_hue(image: Image.Image, turn: float) -> Image.Image:
    """The image with its hue rotated by ``turn`` of the colour circle (saturation, value kept)."""
    hue, saturation, value = image.convert("HSV").split()
    shift = round(turn * 256)
    hue = hue.point([(level + shift) % 256 for level in range(256)])
    return Image.merge("HSV", (hue, saturation, value)).convert("RGB")


def eval_image(data: bytes, size: int) -> torch.Tensor:
    """Decode + resize the shorter side to ``size`` + centre crop → uint8 tensor [3, size, size]."""
    return eval_pil(decode_rgb(data, size), size)


def eval_pil(image: Image.Image, size: int) -> torch.Tensor:
    scale = size / min(image.width, image.height)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - size) // 2, (height - size) // 2
    return to_uint8_tensor(image.crop((left, top, left + size, top + size)))


def to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()


def normalize_images(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [B, 3, H, W] → float, scaled to [0, 1] and normalised with CLIP's mean/std."""
    mean = torch.tensor(CLIP_MEAN, device=images.device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=images.device, dtype=dtype).view(1, 3, 1, 1)
    return (images.to(dtype) / 255.0 - mean) / std
