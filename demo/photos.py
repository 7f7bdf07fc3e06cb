"""Real photos for the demo pool, from packages installed here, each with captions naming what it shows.

Sources: Debian's mate-backgrounds nature photos (``/usr/share/backgrounds/mate/nature``) and
scikit-image's bundled images (``skimage.data``). Large photos are scaled down so the demo stays fast;
each nature photo also gives two square crops, so the pool holds about 50 distinct real photos.
Both sources are required (``require_photo_sources``): without one the pool, and so the demo's
dataset, would silently differ from machine to machine. ``scripts/setup_env.sh`` installs both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

NATURE_DIR = Path("/usr/share/backgrounds/mate/nature")
_LONG_SIDE = 640
_CROP_SIDE = 360

NATURE_CAPTIONS: dict[str, tuple[str, str, str]] = {
    "Aqua.jpg": ("a drop of water splashing into water", "close-up of a water drop falling into a pool",
                 "splash of clear water in a bowl"),
    "Blinds.jpg": ("close-up of a green leaf with its veins", "fresh green leaf in the sunlight",
                   "macro photo of a big green leaf"),
    "Dune.jpg": ("dry grass on a dune by the sea", "tall grass blowing on a sand dune", "beach grass and the blue sea"),
    "FreshFlower.jpg": ("close-up of an orange flower", "bright orange flower petals",
                        "macro shot of an orange flower in bloom"),
    "Garden.jpg": ("a red and yellow marigold flower in the garden", "orange marigold flower in a garden",
                   "red flower with yellow edges"),
    "GreenMeadow.jpg": ("fresh green grass in a meadow", "close-up of young green grass", "a field of green grass"),
    "LadyBird.jpg": ("a ladybird on a blade of grass among blue flowers", "little red ladybird climbing a leaf",
                     "ladybird and small blue flowers"),
    "RainDrops.jpg": ("raindrops on a green leaf", "water drops on green grass after the rain",
                      "wet green leaves with rain drops"),
    "Storm.jpg": ("storm clouds over a road", "dark storm clouds above the road", "a storm coming over the fields"),
    "TwoWings.jpg": ("dandelion seeds in front of orange flowers", "two dandelion seeds on a stem",
                     "dandelion seed head with orange flowers behind"),
    "Wood.jpg": ("close-up of grey wooden boards", "old wood planks on a deck", "texture of weathered wood"),
    "YellowFlower.jpg": ("a yellow flower with an orange centre", "close-up of yellow flower petals",
                         "bright yellow flower in the sun"),
}  # fmt: skip
# skimage.data loaders and what they show. ``cat`` and ``chelsea`` are the same picture: a natural
# exact duplicate with two different alt-texts.
SKIMAGE_CAPTIONS: dict[str, str] = {
    "astronaut": "portrait of an astronaut in an orange space suit",
    "coffee": "a cup of coffee on a red saucer",
    "chelsea": "a tabby cat looking up",
    "cat": "close-up of a ginger cat with green eyes",
    "rocket": "a rocket on the launch pad at dusk",
    "camera": "a man with a camera on a tripod in a field",
    "coins": "old silver coins laid out in rows",
    "moon": "the surface of the moon with craters",
    "hubble_deep_field": "galaxies in the deep sky seen by a space telescope",
    "brick": "a grey brick wall",
    "retina": "photo of the retina of a human eye",
    "stereo_motorcycle": "a red motorcycle parked in a garage",
    "immunohistochemistry": "stained tissue under a microscope",
    "colorwheel": "a colour wheel with red, green and blue",
    "gravel": "close-up of grey gravel stones",
}


@dataclass(frozen=True)
class Photo:
    """A real photo ready to save: its name, pixels and caption."""

    name: str
    image: Image.Image
    caption: str


class MissingPhotos(RuntimeError):
    """A photo source is not installed; the message is one line saying how to install it."""


def require_photo_sources() -> None:
    """Raises ``MissingPhotos`` unless both sources are installed (the demo's pool depends on them)."""
    if not all((NATURE_DIR / name).is_file() for name in NATURE_CAPTIONS):
        raise MissingPhotos(
            f"the demo needs the nature photos in {NATURE_DIR}: "
            "apt-get install mate-backgrounds (or bash scripts/setup_env.sh)"
        )
    try:
        import skimage.data  # noqa: F401
    except ImportError as error:
        raise MissingPhotos(
            "the demo needs scikit-image's bundled photos: pip install -e '.[demo]' (or bash scripts/setup_env.sh)"
        ) from error


def iter_photos() -> Iterator[Photo]:
    """Every available photo, in a fixed order (nature photos and their crops, then skimage)."""
    for file_name, captions in NATURE_CAPTIONS.items():
        path = NATURE_DIR / file_name
        if not path.is_file():
            continue
        with Image.open(path) as opened:
            opened.draft("RGB", (_LONG_SIDE, _LONG_SIDE))  # decode at 1/2..1/8 scale: 2560 px photos are slow
            image = opened.convert("RGB")
        stem = path.stem.lower()
        yield Photo(f"photo-{stem}", _fit(image, _LONG_SIDE), captions[0])
        width, height = image.size
        side = min(width, height)
        for index, left in enumerate((0, width - side)):
            crop = image.crop((left, 0, left + side, side)).resize(
                (_CROP_SIDE, _CROP_SIDE), Image.Resampling.LANCZOS
            )
            yield Photo(f"photo-{stem}-crop{index}", crop, captions[index + 1])
    yield from _skimage_photos()


def _skimage_photos() -> Iterator[Photo]:
    import skimage.data as data

    for loader, caption in SKIMAGE_CAPTIONS.items():
        try:
            pixels = getattr(data, loader)()
        except Exception:  # an image that needs a download (pooch) in this scikit-image build: skip it
            continue
        if isinstance(pixels, tuple):  # stereo pairs: keep the left view
            pixels = pixels[0]
        image = Image.fromarray(np.asarray(pixels))
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        yield Photo(f"photo-{loader}", _fit(image, _LONG_SIDE), caption)


def _fit(image: Image.Image, long_side: int) -> Image.Image:
    if max(image.size) <= long_side:
        return image
    scale = long_side / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)
