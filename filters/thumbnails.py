"""Small JPEG thumbnails of candidate images, for the report's examples of what a rule dropped.

``make_thumbnail(data, rules, side, max_bytes)`` fits the picture into ``side`` × ``side`` pixels and
encodes it at falling JPEG qualities until it fits ``max_bytes``; anything that is not a decodable image
within ``rules`` (garbage, a decompression bomb, a truncated JPEG) gives None. Total: never raises.
"""

from __future__ import annotations

import contextlib
import io

from PIL import Image, ImageOps

from filters.image_codec import to_rgb
from filters.image_inspect import DEFAULT_RULES, ImageRules, open_image

DEFAULT_SIDE = 128
DEFAULT_MAX_BYTES = 8 * 1024
_QUALITIES = (80, 60, 40, 25)


def make_thumbnail(
    data: bytes | None,
    rules: ImageRules = DEFAULT_RULES,
    side: int = DEFAULT_SIDE,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes | None:
    """A JPEG of at most ``side`` px per side and ``max_bytes`` bytes, or None."""
    opened = open_image(data, rules)
    if isinstance(opened, str):
        return None
    image, _ = opened
    try:
        if image.format == "JPEG":
            image.draft("RGB", (side, side))  # libjpeg decodes at 1/2..1/8 scale: cheap for big photos
        image.load()
        with contextlib.suppress(Exception):
            ImageOps.exif_transpose(image, in_place=True)
        rgb = to_rgb(image)
        rgb.thumbnail((side, side), Image.Resampling.LANCZOS)
        for quality in _QUALITIES:
            buffer = io.BytesIO()
            rgb.save(buffer, format="JPEG", quality=quality)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
    except Exception:  # truncated data, odd modes, codec errors: no thumbnail, never a failure
        return None
    return None
