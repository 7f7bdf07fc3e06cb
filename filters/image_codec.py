"""Full decode of an image for a shard: JPEG draft, EXIF orientation, RGB normalisation, resize, JPEG encode.

Every function is total: a file that cannot be decoded gives a reason, never an exception.

Reasons added here (see ``filters.image_inspect`` for the header-level ones):

- ``image_truncated``: the header parsed (a truncated JPEG reports its size) but the pixel data ends
  early. ``ImageFile.LOAD_TRUNCATED_IMAGES`` is deliberately left off: a half-grey image is not a sample.
- ``image_undecodable``: the pixel data is corrupt or in a mode that has no RGB conversion.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from filters.decision import Reason
from filters.image_inspect import (
    DEFAULT_RULES,
    IMAGE_TOO_MANY_PIXELS,
    IMAGE_TRUNCATED,
    IMAGE_UNDECODABLE,
    ImageInfo,
    ImageRules,
    open_image,
)

__all__ = ["IMAGE_TRUNCATED", "ProcessedImage", "decode_and_resize", "decode_opened", "output_size", "to_rgb"]

# Draft: libjpeg decodes straight to the smallest 1/2, 1/4 or 1/8 scale that is still >= the target and
# Lanczos finishes. Measured on the 12 mate photos (benchmarks/bench_image_rules.py): 1.2x the CPU
# throughput of a plain full decode with resize, encode and pHash included, 2.9x the same work without
# draft; PSNR against a full-resolution Lanczos resize: median 50 dB, 31 dB on the finest texture (Dune)
# where img2dataset's OpenCV area resize gets 32 dB (median 39). Asking libjpeg for 2x the target
# (Pillow's thumbnail default) gives >= 45 dB everywhere but is slower than a plain full decode.
# ``Image.resize`` first shrinks by an integer box filter while the image is over 3x the target, then
# finishes with Lanczos; Pillow documents 3.0 as indistinguishable from a full Lanczos pass.
_REDUCING_GAP = 3.0
_DRAFTABLE_FORMATS = frozenset({"JPEG", "MPO"})  # MPO: the multi-picture JPEG many phone cameras write
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


@dataclass(frozen=True)
class ProcessedImage:
    """A decoded, RGB, resized image ready for a shard.

    ``jpeg`` is what goes into ``KEY.jpg``; ``image`` is the same picture as a PIL RGB image, kept so
    that the hash step (pHash) runs on it without decoding the JPEG again. ``original_*`` are the
    displayed dimensions of the source (after EXIF orientation).
    """

    jpeg: bytes
    width: int
    height: int
    original_width: int
    original_height: int
    source_format: str
    image: Image.Image


def output_size(width: int, height: int, output_side: int) -> tuple[int, int]:
    """Size with the shorter side at most ``output_side``, aspect kept, never upscaled."""
    short_side = min(width, height)
    if short_side <= output_side:
        return width, height
    scale = output_side / short_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    """Scales 16-bit grey (0..65535) to 8-bit (0..255); Pillow's own convert clips it to near-white."""
    pixels = np.asarray(image).astype(np.int64)
    eight_bit = (np.clip(pixels, 0, 65535) + 128) // 257
    return Image.fromarray(eight_bit.astype(np.uint8), "L").convert("RGB")


def _float_to_rgb(image: Image.Image) -> Image.Image:
    """Mode 'F' follows Pillow's convention for 'F' → 'L' (values already on 0..255), with rounding."""
    pixels = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "L").convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparent pixels are composited over white.

    Raises ``ValueError``/``OSError`` for a mode Pillow cannot convert; ``decode_opened`` turns that
    into a reason.
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_rgb(image)
    if mode == "F":
        return _float_to_rgb(image)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _is_truncation(error: Exception) -> bool:
    return isinstance(error, EOFError) or (isinstance(error, OSError) and "truncated" in str(error).lower())


def decode_opened(
    image: Image.Image, info: ImageInfo, rules: ImageRules = DEFAULT_RULES
) -> ProcessedImage | Reason:
    """Decodes an image from ``open_image`` and makes the shard JPEG, or returns why it cannot.

    For a JPEG being shrunk, ``Image.draft`` has libjpeg decode at 1/2, 1/4 or 1/8 scale in the DCT
    domain, which is most of the saving on multi-megapixel photos.
    """
    stored_width, stored_height = image.size
    target_width, target_height = output_size(stored_width, stored_height, rules.output_side)
    try:
        if info.format in _DRAFTABLE_FORMATS and target_width < stored_width:
            image.draft(None, (target_width, target_height))
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return IMAGE_TOO_MANY_PIXELS
    except Exception as error:
        return IMAGE_TRUNCATED if _is_truncation(error) else IMAGE_UNDECODABLE
    before = image.size
    with contextlib.suppress(Exception):  # malformed EXIF: keep the orientation rather than lose the image
        ImageOps.exif_transpose(image, in_place=True)
    rotated = image.size != before  # only a 90° turn of a non-square image changes the size
    original_width, original_height = (
        (stored_height, stored_width) if rotated else (stored_width, stored_height)
    )
    try:
        rgb = to_rgb(image)
        size = output_size(original_width, original_height, rules.output_side)
        if rgb.size != size:
            rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
        buffer = io.BytesIO()
        rgb.save(buffer, format="JPEG", quality=rules.jpeg_quality)
    except Exception:  # a mode with no RGB conversion (e.g. LAB) or a codec failure on odd data
        return IMAGE_UNDECODABLE
    return ProcessedImage(
        jpeg=buffer.getvalue(),
        width=rgb.width,
        height=rgb.height,
        original_width=original_width,
        original_height=original_height,
        source_format=info.format,
        image=rgb,
    )


def decode_and_resize(data: bytes | None, rules: ImageRules = DEFAULT_RULES) -> ProcessedImage | Reason:
    """Full decode + RGB + resize + JPEG encode of ``data``, with no size rules applied (see ``process_image``)."""
    opened = open_image(data, rules)
    if isinstance(opened, str):
        return opened
    image, info = opened
    return decode_opened(image, info, rules)
