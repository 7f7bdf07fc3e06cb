"""Calibrates the pHash near-duplicate radius on real photos: recall on edited copies vs false matches.

Photos: Debian mate-backgrounds nature JPEGs and scikit-image's bundled photos. For each photo we
make edited copies a crawl really contains (re-encoded at low JPEG quality, downscaled, slightly
cropped, brightness shifted, slightly rotated, greyscale) and hash everything through the project's
own path (``decode_and_resize`` then ``phash_hex``). For each radius 0..16 it prints

- recall: the share of copies within the radius of their original (per edit and overall);
- false-match rate: the share of unrelated pairs within the radius. Unrelated = the photos plus tiles
  cut from different regions of the large photos (tile pairs from one photo share its colours and
  texture, so they are hard negatives); a tile is never paired with the photo it was cut from;
- cost: the level-1 tables the Beam search shuffles each image into at 1M and 1B images
  (``pipelines.near_stages.level_one_plan``; the in-memory search and the eval blocklist use the same
  block-combination tables), and the share of unrelated pairs that share a key of one of them at 1M.

Run: ``python benchmarks/calibrate_phash.py`` (about 20 s on 2 cores).
"""

from __future__ import annotations

import argparse
import io
import itertools
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from filters.dedup import hamming, phash_hex
from filters.image import ImageRules, ProcessedImage, decode_and_resize
from pipelines.near_units import level_one_plan

MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
SKIMAGE_PHOTOS = (
    "astronaut", "camera", "chelsea", "coffee", "rocket", "motorcycle_left", "hubble_deep_field",
    "coins", "moon", "retina", "brick", "grass", "gravel",
)  # fmt: skip
RULES = ImageRules()
FULL_SIZE = ImageRules(output_side=10**6)  # edits start from the full-resolution picture
MAX_RADIUS = 16


def load_photos() -> dict[str, bytes]:
    """Name → original encoded bytes (mate JPEG files as shipped; skimage arrays as PNG)."""
    import skimage.data

    photos = {path.stem: path.read_bytes() for path in sorted(MATE_NATURE.glob("*.jpg"))}
    for name in SKIMAGE_PHOTOS:
        pixels = (
            skimage.data.stereo_motorcycle()[0]
            if name == "motorcycle_left"
            else getattr(skimage.data, name)()
        )
        photos[name] = encode(Image.fromarray(np.ascontiguousarray(pixels)), "PNG")
    return photos


def encode(image: Image.Image, fmt: str = "JPEG", quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=quality) if fmt == "JPEG" else image.save(buffer, format=fmt)
    return buffer.getvalue()


def decoded(data: bytes, rules: ImageRules) -> Image.Image:
    processed = decode_and_resize(data, rules)
    if not isinstance(processed, ProcessedImage):
        raise SystemExit(f"calibrate_phash: a calibration image failed to decode: {processed}")
    return processed.image


def pipeline_phash(data: bytes) -> str:
    """The hash exactly as the pipeline computes it: on the shard-sized decoded image."""
    return phash_hex(decoded(data, RULES))


def crop(image: Image.Image, fraction: float, centred: bool) -> Image.Image:
    """Removes ``fraction`` of each dimension: split over both sides, or all from the top-left corner."""
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    if centred:
        return image.crop((dx // 2, dy // 2, image.width - (dx - dx // 2), image.height - (dy - dy // 2)))
    return image.crop((dx, dy, image.width, image.height))


def rotate(image: Image.Image, degrees: float) -> Image.Image:
    """Rotates, then crops the border that the rotation filled, as a straightened re-upload would."""
    turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC)
    margin = math.sin(math.radians(abs(degrees)))
    dx, dy = math.ceil(image.height * margin), math.ceil(image.width * margin)
    return turned.crop((dx, dy, image.width - dx, image.height - dy))


EDITS = {
    "jpeg_q30": lambda im: encode(im, quality=30),
    "jpeg_q10": lambda im: encode(im, quality=10),
    "scale_0.5": lambda im: encode(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)),
    "scale_0.25": lambda im: encode(im.resize((im.width // 4, im.height // 4), Image.Resampling.LANCZOS)),
    "crop_2": lambda im: encode(crop(im, 0.02, True)),
    "crop_5": lambda im: encode(crop(im, 0.05, True)),
    "crop_10": lambda im: encode(crop(im, 0.10, True)),
    "crop_corner_5": lambda im: encode(crop(im, 0.05, False)),
    "crop_corner_10": lambda im: encode(crop(im, 0.10, False)),
    "bright+10": lambda im: encode(ImageEnhance.Brightness(im).enhance(1.10)),
    "bright-10": lambda im: encode(ImageEnhance.Brightness(im).enhance(0.90)),
    "bright+20": lambda im: encode(ImageEnhance.Brightness(im).enhance(1.20)),
    "bright-20": lambda im: encode(ImageEnhance.Brightness(im).enhance(0.80)),
    "contrast+20": lambda im: encode(ImageEnhance.Contrast(im).enhance(1.20)),
    "rotate_1": lambda im: encode(rotate(im, 1.0)),
    "rotate_3": lambda im: encode(rotate(im, 3.0)),
    "greyscale": lambda im: encode(im.convert("L").convert("RGB")),
    "q30+scale_0.5": lambda im: encode(
        im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS), quality=30
    ),
    "crop_5+bright+10": lambda im: encode(ImageEnhance.Brightness(crop(im, 0.05, True)).enhance(1.10)),
}
FAMILIES = {
    "jpeg": ("jpeg_q30", "jpeg_q10", "q30+scale_0.5"),
    "scale": ("scale_0.5", "scale_0.25"),
    "light": ("bright+10", "bright-10", "bright+20", "bright-20", "contrast+20", "greyscale"),
    "crop_2": ("crop_2",),
    "crop_5": ("crop_5", "crop_corner_5", "crop_5+bright+10"),
    "crop_10": ("crop_10", "crop_corner_10"),
    "rotate": ("rotate_1", "rotate_3"),
}
# A mirrored copy is a different pHash by construction; measured and shown, never counted in recall.
UNCOVERED_EDITS = {"mirror": lambda im: encode(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT))}


def tiles(image: Image.Image, grid: int) -> list[Image.Image]:
    width, height = image.width // grid, image.height // grid
    return [
        image.crop((col * width, row * height, (col + 1) * width, (row + 1) * height))
        for row in range(grid)
        for col in range(grid)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=6, help="tiles per side cut from each large photo")
    args = parser.parse_args(argv)

    photos = load_photos()
    originals = {name: decoded(data, FULL_SIZE) for name, data in photos.items()}
    original_hash = {name: pipeline_phash(data) for name, data in photos.items()}

    distances: dict[str, list[int]] = defaultdict(list)
    for name, image in originals.items():
        for edit, make in {**EDITS, **UNCOVERED_EDITS}.items():
            distances[edit].append(hamming(original_hash[name], pipeline_phash(make(image))))

    unrelated = [(name, name, digest) for name, digest in original_hash.items()]
    for name, image in originals.items():
        if min(image.size) >= 800:
            for index, tile in enumerate(tiles(image, args.grid)):
                unrelated.append((f"{name}#{index}", name, pipeline_phash(encode(tile))))
    # Skip (tile, its own photo): the tile is part of that photo. Tiles of one photo do pair up.
    pairs = [
        (a, b)
        for a, b in itertools.combinations(unrelated, 2)
        if not (a[1] == b[1] and (a[0] == a[1] or b[0] == b[1]))
    ]
    negative = np.array([hamming(a[2], b[2]) for a, b in pairs])

    print(f"photos: {len(photos)} ({', '.join(photos)})")
    print(f"edited copies: {len(photos) * len(EDITS)} in {len(EDITS)} edits; unrelated items: {len(unrelated)}, "
          f"unrelated pairs: {len(pairs)}")  # fmt: skip
    print(f"unrelated-pair distance: min {negative.min()}, 0.1% {np.percentile(negative, 0.1):.0f}, "
          f"1% {np.percentile(negative, 1):.0f}, median {np.median(negative):.0f}")  # fmt: skip
    print("\nper-edit distance to the original: median / max")
    for edit, values in distances.items():
        flag = "  (not a target: mirrored)" if edit in UNCOVERED_EDITS else ""
        print(f"  {edit:18s} {np.median(values):4.0f} / {max(values):3d}{flag}")

    covered = np.array([d for edit, values in distances.items() if edit in EDITS for d in values])
    odd = int(sum(d % 2 for values in distances.values() for d in values) + (negative % 2).sum())
    print(f"\nodd distances seen: {odd} (a pHash thresholds 64 DCT terms at their median: 32 bits set, so "
          "distances are even and an odd radius matches what the even radius below it matches)")  # fmt: skip
    families = {family: [d for edit in edits for d in distances[edit]] for family, edits in FAMILIES.items()}
    print("\nrecall (share of edited copies within the radius) and cost (level-1 tables per image)")
    print("radius  all   " + " ".join(f"{family:>8s}" for family in families)
          + "  false matches (rate)  tables@1M  tables@1B  pairs sharing a key@1M")  # fmt: skip
    for radius in range(MAX_RADIUS + 1):
        recall = float((covered <= radius).mean())
        per_family = " ".join(f"{float((np.array(v) <= radius).mean()):8.3f}" for v in families.values())
        false = int((negative <= radius).sum())
        plan, web = level_one_plan(radius, 10**6), level_one_plan(radius, 10**9)
        keys = {item[0]: {(t, int(item[2], 16) & m) for t, m in enumerate(plan.masks)} for item in unrelated}
        candidates = sum(1 for a, b in pairs if keys[a[0]] & keys[b[0]]) / len(pairs)
        print(f"{radius:6d} {recall:5.3f} {per_family}  {false:6d} ({false / len(pairs):.1e})"
              f"  {plan.tables:9d}  {web.tables:9d}  {candidates:22.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
