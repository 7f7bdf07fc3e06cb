"""Cheap image checks: read the header (format, size, mode, EXIF orientation) and apply the size rules.

Nothing here decodes pixel data: ``PIL.Image.open`` parses the header only, so an image that
fails a rule costs a header parse, not a full decode. Every function is total: bad bytes give a
reason string, never an exception.

Reasons (stable strings, counted by the pipeline):

- ``image_missing``: no bytes (``None`` or empty).
- ``image_file_too_small``: fewer bytes than ``ImageRules.min_bytes`` (off by default; COYO uses 5 KB).
- ``image_undecodable``: not an image PIL can parse (HTML error pages, garbage, broken headers).
- ``image_too_many_pixels``: declared width × height above ``ImageRules.max_pixels`` (decompression bomb).
- ``image_too_small``: shorter side not more than ``min_side`` (ALIGN: keep when > 200 px).
- ``image_bad_aspect``: long side / short side not below ``max_aspect`` (ALIGN: keep when < 3),
  in either orientation.
- ``image_truncated``: a JPEG whose bytes are too few for the blocks its header declares
  (``filters.jpeg_scan``; libjpeg would fill the rest with grey and not fail). The decoder finds the
  other truncations (``filters.image_codec``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from filters.decision import KEEP, Reason, Verdict
from filters.jpeg_scan import scan_data_shortfall

IMAGE_MISSING = "image_missing"
IMAGE_FILE_TOO_SMALL = "image_file_too_small"
IMAGE_UNDECODABLE = "image_undecodable"
IMAGE_TOO_MANY_PIXELS = "image_too_many_pixels"
IMAGE_TOO_SMALL = "image_too_small"
IMAGE_BAD_ASPECT = "image_bad_aspect"
IMAGE_TRUNCATED = "image_truncated"

# EXIF orientations 5..8 store the picture rotated by 90°: the displayed size is the stored size swapped.
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageRules:
    """Image thresholds and output settings; defaults follow ALIGN (Jia et al. 2021, §3).

    ``min_side``: keep when the shorter side is MORE than this (exactly 200 px is dropped).
    ``max_aspect``: keep when long/short is BELOW this (exactly 3.0:1 is dropped).
    ``max_pixels``: decompression-bomb bound on declared width × height; the default is Pillow's own
    ``Image.MAX_IMAGE_PIXELS``. Pillow refuses anything above twice its global limit before we see it,
    so a larger value here is capped at ``2 * Image.MAX_IMAGE_PIXELS``.
    ``min_bytes``: drop files smaller than this many bytes; 0 (off) by default, COYO-700M uses 5120.
    ``output_side``: shards store the image resized so its shorter side is at most this many pixels,
    aspect kept, never upscaled (img2dataset's default size, 256).
    ``jpeg_quality``: quality of the re-encoded shard JPEG (img2dataset's default, 95).
    """

    min_side: int = 200
    max_aspect: float = 3.0
    max_pixels: int = 89_478_485
    min_bytes: int = 0
    output_side: int = 256
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.min_side < 0 or self.max_aspect < 1.0 or self.max_pixels <= 0 or self.min_bytes < 0:
            raise ValueError(
                "ImageRules: need min_side >= 0, max_aspect >= 1, max_pixels > 0 and min_bytes >= 0"
            )
        if self.output_side <= 0 or not 1 <= self.jpeg_quality <= 100:
            raise ValueError("ImageRules: need output_side > 0 and jpeg_quality in 1..100")


DEFAULT_RULES = ImageRules()


@dataclass(frozen=True)
class ImageInfo:
    """What the header says. ``width``/``height`` are as displayed, i.e. after EXIF orientation."""

    format: str
    width: int
    height: int
    mode: str
    orientation: int = 1


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8) without decoding pixels; 1 when absent or unreadable.

    PNG keeps EXIF in an ``eXIf`` chunk that may follow the pixel data, and Pillow's
    ``PngImageFile.getexif`` decodes the whole image to find it; here only a chunk already
    read with the header counts, so a header check stays cheap.
    """
    try:
        if image.format == "PNG":
            raw = image.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = image.getexif()
        value = int(exif.get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # malformed EXIF must not cost the image: treat it as unrotated
        return 1
    return value if 1 <= value <= 8 else 1


def open_image(
    data: bytes | None, rules: ImageRules = DEFAULT_RULES
) -> tuple[Image.Image, ImageInfo] | Reason:
    """Opens ``data`` lazily (header only) and returns the PIL image with its ``ImageInfo``, or a reason.

    The returned image has not been decoded; callers that need pixels call ``load()`` themselves.
    """
    if data is None:
        return IMAGE_MISSING
    if not isinstance(data, bytes | bytearray | memoryview):
        return IMAGE_UNDECODABLE
    if len(data) == 0:
        return IMAGE_MISSING
    if len(data) < rules.min_bytes:
        return IMAGE_FILE_TOO_SMALL
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # The warning is an exception only when the caller's warning filters say "error".
        return IMAGE_TOO_MANY_PIXELS
    except Exception:  # image parsers raise many types (OSError, SyntaxError, struct.error, ...)
        return IMAGE_UNDECODABLE
    stored_width, stored_height = image.size
    if stored_width <= 0 or stored_height <= 0 or not image.format:
        return IMAGE_UNDECODABLE
    if stored_width * stored_height > rules.max_pixels:
        return IMAGE_TOO_MANY_PIXELS
    if image.format in ("JPEG", "MPO") and scan_data_shortfall(bytes(data)) is not None:
        return IMAGE_TRUNCATED
    orientation = exif_orientation(image)
    width, height = (
        (stored_height, stored_width)
        if orientation in _ROTATED_ORIENTATIONS
        else (stored_width, stored_height)
    )
    info = ImageInfo(
        format=image.format, width=width, height=height, mode=image.mode, orientation=orientation
    )
    return image, info


def inspect_image(data: bytes | None, rules: ImageRules = DEFAULT_RULES) -> ImageInfo | Reason:
    """Format, displayed size and mode from the header alone, or why the bytes are not a usable image."""
    opened = open_image(data, rules)
    if isinstance(opened, str):
        return opened
    image, info = opened
    image.close()
    return info


def check_image_size(width: int, height: int, rules: ImageRules = DEFAULT_RULES) -> Verdict:
    """ALIGN's size rules: shorter side > ``min_side`` and aspect ratio < ``max_aspect`` (either way)."""
    short_side, long_side = sorted((width, height))
    if short_side <= rules.min_side:
        return IMAGE_TOO_SMALL
    if long_side >= rules.max_aspect * short_side:
        return IMAGE_BAD_ASPECT
    return KEEP
