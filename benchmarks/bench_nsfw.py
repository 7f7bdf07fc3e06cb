"""The NSFW image rule on the project's real, safe photos: false-positive rate and images/s per core.

Photos: Debian's mate-backgrounds (12 nature photos), scikit-image's bundled photographs, and
tiles cut from the mate photos (a 3×2 grid each), all as the pipeline would hand them to the rule:
through ``process_image`` (decode, resize to the shard size, shorter side 256). None is explicit,
so every ``image_nsfw`` is a false positive; the rate is printed for several thresholds, with the
highest explicit-class score seen (how far the default 0.5 is from the first false positive).

Throughput, one thread (onnxruntime ``intra_op_num_threads=1``), CPU time of this process: the
detector (``NudeNetDetector.detect`` on the 256-px image) against the image stage it would join
(``process_image``: decode, resize, JPEG on the source bytes) and NudeNet's own ``detect`` on the
same images, interleaved A, B, C, A, B, C, ..., medians of the rounds.
Run: ``python benchmarks/bench_nsfw.py [--quick]`` (needs the nsfw extra).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image

from filters.image import process_image
from filters.nsfw_image import EXPLICIT_CLASSES, NsfwRules, NudeNetDetector, judge_detections

MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
# scikit-image's bundled photographs (no download): people, animals, objects, scenes, microscopy.
SKIMAGE_PHOTOS = (
    "astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "moon", "coins", "clock", "brick", "grass", "gravel", "cell",
)  # fmt: skip
THRESHOLDS = (0.25, 0.3, 0.4, 0.5, 0.6)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def safe_photos(tiles: bool = True) -> dict[str, list[tuple[str, bytes]]]:
    """{set name: [(name, JPEG bytes)]}: mate photos, their tiles, scikit-image photos."""
    import skimage.data

    mate = [(path.name, path.read_bytes()) for path in sorted(MATE_NATURE.glob("*.jpg"))]
    sets = {"mate-backgrounds": mate}
    if tiles:
        cut = []
        for name, data in mate:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                for row in range(2):
                    for col in range(3):
                        box = (
                            col * width // 3,
                            row * height // 2,
                            (col + 1) * width // 3,
                            (row + 1) * height // 2,
                        )
                        cut.append((f"{name}[{row},{col}]", _jpeg(image.crop(box))))
        sets["mate tiles (3x2)"] = cut
    photos = []
    for name in SKIMAGE_PHOTOS:
        pixels = np.ascontiguousarray(getattr(skimage.data, name)())
        photos.append((name, _jpeg(Image.fromarray(pixels))))
    sets["scikit-image"] = photos
    return sets


def as_pipeline_sees_it(data: bytes) -> Image.Image:
    processed = process_image(data)
    if isinstance(processed, str):  # a real photo below the size rules: judge it as decoded
        return Image.open(io.BytesIO(data)).convert("RGB")
    return processed.image


def false_positives(detector: NudeNetDetector, sets: dict[str, list[tuple[str, bytes]]]) -> None:
    total = {t: 0 for t in THRESHOLDS}
    count, highest, where = 0, 0.0, ""
    for set_name, photos in sets.items():
        flagged = {t: 0 for t in THRESHOLDS}
        for name, data in photos:
            detections = detector.detect(as_pipeline_sees_it(data))
            for threshold in THRESHOLDS:
                rules = NsfwRules(tuple((c, threshold) for c in EXPLICIT_CLASSES))
                flagged[threshold] += judge_detections(detections, rules).reason is not None
            for cls, score in detections:
                if cls in EXPLICIT_CLASSES and score > highest:
                    highest, where = score, f"{cls} on {name}"
        count += len(photos)
        rates = "  ".join(f"@{t:.2f} {flagged[t]:>2}/{len(photos)}" for t in THRESHOLDS)
        print(f"  {set_name:18s} {rates}")
        for threshold in THRESHOLDS:
            total[threshold] += flagged[threshold]
    rates = "  ".join(f"@{t:.2f} {total[t] / count:5.1%}" for t in THRESHOLDS)
    print(f"  {'all ' + str(count):18s} {rates}")
    print(
        f"  highest explicit-class score on a safe photo: {highest:.3f} ({where or 'none above the 0.25 floor'})"
    )
    zero = total[0.5] == 0
    bound = 3.0 / count  # the "rule of three": 95 % upper bound on a rate when 0 of n are seen
    if zero:
        print(f"  default 0.5: 0/{count} false positives (95 % upper bound on the rate ~{bound:.1%})")


def cpu_rate(fn, items: list) -> float:
    start = time.process_time()
    for item in items:
        fn(item)
    return len(items) / max(time.process_time() - start, 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="no tiles, 2 rounds on 6 photos")
    args = parser.parse_args(argv)
    detector = NudeNetDetector(threads=1).load()
    sets = safe_photos(tiles=not args.quick)
    print(
        f"model: {detector.model_path or 'nudenet 320n (in the wheel)'}, input {detector.input_size}, classes {len(detector.classes)}"
    )
    print("false positives (image_nsfw on safe photos) by threshold on the five explicit classes:")
    false_positives(detector, sets)

    photos = [data for photos in sets.values() for _, data in photos]
    photos = photos[:6] if args.quick else photos[:40]
    images = [as_pipeline_sees_it(data) for data in photos]
    from nudenet import NudeDetector

    reference = NudeDetector()  # its own session: onnxruntime's default threads; CPU time counts them all
    arrays = [np.ascontiguousarray(np.asarray(image)) for image in images]
    rounds = 2 if args.quick else 5
    stage, ours, theirs = [], [], []
    for _ in range(rounds):
        stage.append(cpu_rate(process_image, photos))
        ours.append(cpu_rate(detector.detect, images))
        theirs.append(cpu_rate(reference.detect, arrays))
    stage_rate, our_rate, their_rate = (statistics.median(r) for r in (stage, ours, theirs))
    size = f"{images[0].size[0]}x{images[0].size[1]}"
    print(f"throughput per core (CPU s), {len(images)} images (e.g. {size}), {rounds} rounds:")
    print(f"  process_image on the source (baseline): {stage_rate:7.1f} images/s")
    print(
        f"  NudeNetDetector.detect (this rule):     {our_rate:7.1f} images/s  ({our_rate / stage_rate:.2f}x baseline)"
    )
    print(
        f"  nudenet.NudeDetector.detect:            {their_rate:7.1f} images/s  ({their_rate / stage_rate:.2f}x baseline)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
