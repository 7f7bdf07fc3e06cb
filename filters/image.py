"""Image rules for curation: the one entry point the pipeline calls, and the names it needs.

``process_image`` runs the checks cheapest first: header parse (``filters.image_inspect``), ALIGN's
size rules, then the full decode/resize/encode (``filters.image_codec``). An image rejected on size
therefore costs a header parse, not a decode. Reasons, all stable strings:

``image_missing``, ``image_file_too_small``, ``image_undecodable``, ``image_too_many_pixels``,
``image_too_small``, ``image_bad_aspect``, ``image_truncated``.
"""

from __future__ import annotations

from filters.decision import Reason
from filters.image_codec import IMAGE_TRUNCATED, ProcessedImage, decode_and_resize, decode_opened, to_rgb
from filters.image_inspect import (
    DEFAULT_RULES,
    IMAGE_BAD_ASPECT,
    IMAGE_FILE_TOO_SMALL,
    IMAGE_MISSING,
    IMAGE_TOO_MANY_PIXELS,
    IMAGE_TOO_SMALL,
    IMAGE_UNDECODABLE,
    ImageInfo,
    ImageRules,
    check_image_size,
    inspect_image,
    open_image,
)

IMAGE_REASONS: tuple[str, ...] = (
    IMAGE_MISSING,
    IMAGE_FILE_TOO_SMALL,
    IMAGE_UNDECODABLE,
    IMAGE_TOO_MANY_PIXELS,
    IMAGE_TOO_SMALL,
    IMAGE_BAD_ASPECT,
    IMAGE_TRUNCATED,
)

__all__ = [
    "DEFAULT_RULES",
    "IMAGE_BAD_ASPECT",
    "IMAGE_FILE_TOO_SMALL",
    "IMAGE_MISSING",
    "IMAGE_REASONS",
    "IMAGE_TOO_MANY_PIXELS",
    "IMAGE_TOO_SMALL",
    "IMAGE_TRUNCATED",
    "IMAGE_UNDECODABLE",
    "ImageInfo",
    "ImageRules",
    "ProcessedImage",
    "check_image_size",
    "decode_and_resize",
    "inspect_image",
    "process_image",
    "to_rgb",
]


def process_image(data: bytes | None, rules: ImageRules = DEFAULT_RULES) -> ProcessedImage | Reason:
    """Header check → size rules → full decode, resize and JPEG encode; a reason at the first failure."""
    opened = open_image(data, rules)
    if isinstance(opened, str):
        return opened
    image, info = opened
    reason = check_image_size(info.width, info.height, rules)
    if reason is not None:
        image.close()
        return reason
    return decode_opened(image, info, rules)
