"""Throughput of the image rule path (header → size rules → draft decode → resize → JPEG → pHash + sha256).

Compared, in the same process and on the same bytes, with:

- baseline: a plain full decode, ``Image.open(...).convert("RGB")`` (no resize, no encode, no hash);
- the same work as the rule path without ``Image.draft`` (full decode, resize, encode, pHash);
- img2dataset's own ``Resizer`` (OpenCV decode + resize + encode; no hashing);
- the rule path on images that fail the size rule (what a rejection costs).

Two sets: the 12 multi-megapixel mate-backgrounds photos, and ≤ 640 px JPEGs made from them and
from scikit-image's photos (where ``draft`` cannot help). Figures are images/s, best of ``--rounds``.

Run: ``python benchmarks/bench_image_rules.py`` (about a minute) or ``--quick`` (2 images, seconds).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from filters.dedup import phash_hex, sha256_hex
from filters.image import ImageRules, ProcessedImage, process_image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations (via img2dataset) checks online

MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")
RULES = ImageRules()
REJECTING_RULES = ImageRules(min_side=10_000)


def large_photos() -> list[bytes]:
    photos = [path.read_bytes() for path in sorted(MATE_NATURE.glob("*.jpg"))]
    if not photos:
        raise SystemExit(f"bench_image_rules: no photos in {MATE_NATURE}; install Debian's mate-backgrounds")
    return photos


def small_jpegs(large: list[bytes]) -> list[bytes]:
    """≤ 640 px JPEGs: the large photos shrunk, plus scikit-image's photos."""
    import skimage.data

    images = []
    for data in large:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image.thumbnail((640, 640), Image.Resampling.LANCZOS)
        images.append(image)
    for name in SKIMAGE_PHOTOS:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        image.thumbnail((640, 640), Image.Resampling.LANCZOS)
        images.append(image)
    out = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def rule_path(data: bytes) -> object:
    processed = process_image(data, RULES)
    assert isinstance(processed, ProcessedImage), processed
    return sha256_hex(data), phash_hex(processed.image)


def rejected_path(data: bytes) -> object:
    reason = process_image(data, REJECTING_RULES)
    assert reason == "image_too_small", reason
    return reason


def full_decode(data: bytes) -> object:
    return Image.open(io.BytesIO(data)).convert("RGB")


def no_draft_path(data: bytes) -> object:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    scale = RULES.output_side / min(image.size)
    if scale < 1:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=RULES.jpeg_quality)
    return sha256_hex(data), phash_hex(image)


def img2dataset_path() -> Callable[[bytes], object] | None:
    try:
        from img2dataset.resizer import ResizeMode, Resizer
    except ImportError:
        return None
    resizer = Resizer(
        image_size=RULES.output_side,
        resize_mode=ResizeMode.keep_ratio,
        resize_only_if_bigger=True,
        encode_quality=RULES.jpeg_quality,
        min_image_size=RULES.min_side,
        max_aspect_ratio=RULES.max_aspect,
    )

    def run(data: bytes) -> object:
        result = resizer(io.BytesIO(data))
        assert result[-1] is None, result[-1]
        return result

    return run


def images_per_second(
    functions: dict[str, Callable[[bytes], object]], images: list[bytes], rounds: int
) -> dict[str, float]:
    """CPU-time throughput of each function, best of ``rounds``; the paths take turns within a round.

    Every path runs on one thread (Pillow decodes on one; the Resizer sets OpenCV to one), so process
    CPU time measures the work itself and is not skewed by other jobs sharing the machine.
    """
    best = dict.fromkeys(functions, float("inf"))
    for function in functions.values():  # warm-up: first-call imports and allocations
        function(images[0])
    for _ in range(rounds):
        for label, function in functions.items():
            start = time.process_time()
            for data in images:
                function(data)
            best[label] = min(best[label], time.process_time() - start)
    return {label: len(images) / max(seconds, 1e-9) for label, seconds in best.items()}


def psnr_against_full_lanczos(outputs: list[Image.Image], images: list[bytes]) -> list[float]:
    """PSNR of each shard image against a full-resolution decode resized with Lanczos to the same size."""
    values = []
    for output, data in zip(outputs, images):
        reference = Image.open(io.BytesIO(data)).convert("RGB").resize(output.size, Image.Resampling.LANCZOS)
        error = np.mean((np.asarray(output, dtype=np.float64) - np.asarray(reference, dtype=np.float64)) ** 2)
        values.append(10 * np.log10(255**2 / max(error, 1e-9)))
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one large and one small image, one round (smoke test)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed passes per path; the best is reported")
    args = parser.parse_args(argv)

    large = large_photos()
    small = small_jpegs(large)
    rounds = args.rounds
    if args.quick:
        large, small, rounds = large[:1], small[:1], 1
    sets = {"large": large, "small": small}
    for name, images in sets.items():
        sizes = [Image.open(io.BytesIO(data)).size for data in images]
        megapixels = np.mean([w * h for w, h in sizes]) / 1e6
        print(
            f"{name}: {len(images)} JPEGs, mean {megapixels:.2f} MP, {np.mean([len(d) for d in images]) / 1e3:.0f} KB"
        )

    resizer = img2dataset_path()
    paths: dict[str, Callable[[bytes], object]] = {
        "full decode (baseline)": full_decode,
        "rule path: draft+resize+jpeg+phash": rule_path,
        "same without draft": no_draft_path,
        "rejected at size rule": rejected_path,
    }
    if resizer is None:
        print("img2dataset Resizer: skipped (img2dataset not installed)")
    else:
        paths["img2dataset Resizer (no hash)"] = resizer
    results = {name: images_per_second(paths, images, rounds) for name, images in sets.items()}

    baseline = {name: figures["full decode (baseline)"] for name, figures in results.items()}
    print(
        f"\n{'path (CPU-time throughput)':38s} {'large images/s':>15s} {'ratio':>7s} {'small images/s':>15s} {'ratio':>7s}"
    )
    for label in paths:
        large_rate, small_rate = results["large"][label], results["small"][label]
        print(
            f"{label:38s} {large_rate:15.1f} {large_rate / baseline['large']:6.2f}x "
            f"{small_rate:15.1f} {small_rate / baseline['small']:6.2f}x"
        )
    print("(ratio = images/s over the full-decode baseline; > 1 is faster)")

    rule_outputs = []
    for data in large:
        processed = process_image(data, RULES)
        assert isinstance(processed, ProcessedImage), processed
        rule_outputs.append(processed.image)
    quality = {"rule path": psnr_against_full_lanczos(rule_outputs, large)}
    if resizer is not None:
        decoded = [Image.open(io.BytesIO(resizer(data)[0])).convert("RGB") for data in large]  # type: ignore[index]
        quality["img2dataset Resizer"] = psnr_against_full_lanczos(decoded, large)
    print("\nshard image vs full-resolution Lanczos resize, large set, PSNR dB: min / median")
    for label, values in quality.items():
        print(f"  {label:22s} {min(values):5.1f} / {float(np.median(values)):5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
