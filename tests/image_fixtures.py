"""Shared test images: real photos from installed packages and crafted odd files.

Real photos: Debian's mate-backgrounds (12 multi-megapixel nature JPEGs) and scikit-image's bundled
images (``skimage.data``). Odd files are built in memory with Pillow so each test states exactly what
it feeds in.
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
# skimage.data photos bundled with the wheel (no download needed); 'camera' is greyscale.
SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "motorcycle_left",
    "hubble_deep_field",
)


def mate_photo_paths() -> list[Path]:
    """The mate-backgrounds nature photos, sorted by name (empty if the package is missing)."""
    return sorted(MATE_NATURE.glob("*.jpg"))


@cache
def mate_photo_bytes(name: str) -> bytes:
    return (MATE_NATURE / name).read_bytes()


@cache
def skimage_photo(name: str) -> Image.Image:
    """A scikit-image bundled photo as a PIL image (RGB, or L for 'camera')."""
    import skimage.data

    if name == "motorcycle_left":
        pixels = skimage.data.stereo_motorcycle()[0]
    else:
        pixels = getattr(skimage.data, name)()
    return Image.fromarray(np.ascontiguousarray(pixels))


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo_jpeg(size: tuple[int, int] | None = None, quality: int = 90) -> bytes:
    """A real photo (skimage 'coffee', 600×400) as JPEG, optionally resized to ``size`` (aspect not kept)."""
    image = skimage_photo("coffee")
    if size is not None:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return encode(image, "JPEG", quality=quality)


def exif_rotated_jpeg(orientation: int = 6) -> bytes:
    """A 600×400 stored photo whose EXIF says 'rotate 90°' (6): it displays as 400×600."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(skimage_photo("coffee"), "JPEG", quality=90, exif=exif.tobytes())


def mpo_photo() -> bytes:
    """A multi-picture JPEG (MPO, as phone cameras write): a 2560×1600 mate photo plus a second frame."""
    image = Image.open(io.BytesIO(mate_photo_bytes("Aqua.jpg"))).convert("RGB")
    return encode(image, "MPO", save_all=True, append_images=[image.resize((640, 400))])


def rgba_png(size: tuple[int, int] = (300, 300)) -> bytes:
    """Red at 50 % opacity everywhere: over white it is (255, 128, 128)."""
    return encode(Image.new("RGBA", size, (255, 0, 0, 128)), "PNG")


def cmyk_jpeg() -> bytes:
    return encode(skimage_photo("chelsea").convert("CMYK"), "JPEG", quality=90)


def palette_png_with_transparency(size: tuple[int, int] = (300, 300)) -> bytes:
    """A palette PNG whose index 0 is transparent (left half) and index 1 is pure blue (right half)."""
    width, height = size
    image = Image.new("P", size, 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * (254 * 3))
    image.paste(1, (width // 2, 0, width, height))
    return encode(image, "PNG", transparency=0)


def la_png(size: tuple[int, int] = (300, 300)) -> bytes:
    """Greyscale+alpha: black ink, fully transparent everywhere except a black square in the middle."""
    width, height = size
    alpha = Image.new("L", size, 0)
    alpha.paste(255, (width // 3, height // 3, 2 * width // 3, 2 * height // 3))
    image = Image.merge("LA", (Image.new("L", size, 0), alpha))
    return encode(image, "PNG")


def grey16_png(value: int = 32768, size: tuple[int, int] = (300, 300)) -> bytes:
    """A uniform 16-bit greyscale PNG ('I;16'); 32768 is mid-grey."""
    return encode(Image.fromarray(np.full(size[::-1], value, dtype=np.uint16)), "PNG")


def one_bit_png(size: tuple[int, int] = (300, 300)) -> bytes:
    """Mode '1': white left half, black right half."""
    image = Image.new("1", size, 1)
    image.paste(0, (size[0] // 2, 0, size[0], size[1]))
    return encode(image, "PNG")


def tiny_gif() -> bytes:
    return encode(Image.new("P", (1, 1), 0), "GIF")


def truncated_jpeg() -> bytes:
    """A real multi-megapixel photo cut at 60%: the header (and size) are intact, the scan is not."""
    data = mate_photo_bytes("Aqua.jpg")
    return data[: int(len(data) * 0.6)]


HTML_BYTES = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>Not Found</body></html>"


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width``×``height`` RGB with almost no pixel data (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + _png_chunk(b"IEND", b"")
    )
