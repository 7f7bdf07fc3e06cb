"""Throughput of the curation job's stages on Beam's local runner, per core, against a plain-Python baseline.

Two stage groups, each run three ways on the same data in the same process:

- text stages (ReadCandidates → CleanText with the pool's rare-token table → DropSharedAltTexts →
  MatchQueries → BalanceBeforeDownload) over a synthetic JSONL pool: candidates/s/core;
- image stages (ReadCandidates of WebDataset tars → CheckAndHashImages → Deduplicate) over real photos
  (scikit-image's and Debian's mate-backgrounds, as ≤ 1024 px JPEGs): images/s/core.

img2dataset's own ``Resizer`` on the same images is printed as a second image baseline.

Ways: the same ``filters`` functions in a plain loop (baseline, 1 core); Beam in-process (FnApiRunner,
1 core); Beam with 2 worker processes (``--direct_running_mode=multi_processing``, counted as 2 cores).
Beam figures include pipeline construction and worker start-up, so they improve with size; the
ratio to the baseline is Beam's cost per record on this machine.

Run: ``python benchmarks/bench_pipeline.py`` (a few minutes) or ``--quick`` (seconds).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from PIL import Image

from filters import balance
from filters.dedup import DedupConfig, phash_hex, sha256_hex
from filters.hashing import unit_hash
from filters.image import ImageRules, process_image
from filters.matching import QueryMatcher
from filters.rare_tokens import TokenFrequencyTable, check_rare_tokens, count_ngrams
from filters.text import TextRules, check_alt_text_shared, check_caption, normalize_text
from pipelines.dedup_stages import Deduplicate
from pipelines.image_stages import CheckAndHashImages, SplitPayloads
from pipelines.match_stages import BalanceQueries, MatchQueries
from pipelines.read import Columns, ReadCandidates, match_inputs
from pipelines.text_stages import CleanText, DropSharedAltTexts

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations (via img2dataset) checks online

WORDS = ["dog", "cat", "tree", "car", "boat", "kite", "beach", "park", "river", "mountain", "city", "street", "house", "garden", "flower", "bird", "horse", "train", "bridge", "road", "sunset", "cloud", "snow", "forest", "lake", "field", "table", "chair", "window", "door", "woman", "man", "child", "girl", "boy", "red", "blue", "green", "yellow", "white", "black", "small", "big", "old", "new", "happy", "running", "sitting"]  # fmt: skip
TOP_NGRAMS = 1_000_000
CAP, MARGIN = 20_000, 1.0


def write_text_pool(directory: Path, count: int) -> tuple[str, Path]:
    """``count`` JSONL candidates: 3-12 word captions, a few junk and shared ones; an allowlist of WORDS."""
    lines = []
    for i in range(count):
        length = 3 + int(unit_hash(str(i), "length") * 10)
        caption = " ".join(WORDS[int(unit_hash(f"{i}:{j}", "word") * len(WORDS))] for j in range(length))
        if i % 50 == 0:
            caption = "click here"
        lines.append(json.dumps({"url": f"http://example.com/{i}.jpg", "caption": caption, "width": 640}))
    (directory / "pool.jsonl").write_text("\n".join(lines) + "\n")
    allowlist = directory / "allow.json"
    allowlist.write_text(json.dumps(list(WORDS) + [f"{a} {b}" for a, b in itertools.pairwise(WORDS)]))
    return str(directory / "pool.jsonl"), allowlist


def photos() -> list[bytes]:
    import numpy as np
    import skimage.data

    images = [Image.fromarray(np.ascontiguousarray(getattr(skimage.data, n)())) for n in
              ("astronaut", "coffee", "chelsea", "rocket", "camera")]  # fmt: skip
    for path in sorted(Path("/usr/share/backgrounds/mate/nature").glob("*.jpg")):
        image = Image.open(path)
        image.draft("RGB", (1024, 1024))
        images.append(image.convert("RGB"))
    encoded = []
    for image in images:
        image = image.convert("RGB")
        image.thumbnail((1024, 1024))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        encoded.append(buffer.getvalue())
    return encoded


def write_image_pool(directory: Path, count: int, sources: list[bytes]) -> str:
    """``count`` samples cycling over ``sources`` in WebDataset tars of 100 samples."""
    for start in range(0, count, 100):
        with tarfile.open(directory / f"{start // 100:05d}.tar", "w") as tar:
            for i in range(start, min(start + 100, count)):
                for ext, data in (("jpg", sources[i % len(sources)]),
                                  ("json", json.dumps({"url": f"http://x/{i}.jpg", "caption": f"photo {i}"}).encode())):  # fmt: skip
                    info = tarfile.TarInfo(f"{i:06d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return str(directory / "*.tar")


def text_stages(pipeline: beam.Pipeline, pattern: str, allowlist: Path) -> beam.PCollection:
    records, _ = pipeline | ReadCandidates(match_inputs([pattern], "auto"), Columns())
    records, _ = records | CleanText(TextRules(), "pool", None, TOP_NGRAMS, TOP_NGRAMS)
    records, _ = records | DropSharedAltTexts(10)
    records, _ = records | MatchQueries(str(allowlist))
    records, _ = records | BalanceQueries(
        "balance_pre_download", "exact", balance.pre_download_cap(MARGIN, CAP), 0
    )
    return records


def image_stages(pipeline: beam.Pipeline, pattern: str) -> beam.PCollection:
    records, _ = pipeline | ReadCandidates(match_inputs([pattern], "auto"), Columns())
    records, _ = records | CheckAndHashImages(ImageRules())
    light, _ = records | SplitPayloads()
    kept, rejects = light | Deduplicate(DedupConfig())
    return (kept, rejects) | "Both" >> beam.Flatten()


def run_beam(build: Callable[[beam.Pipeline], beam.PCollection], workers: int, count_file: Path) -> float:
    flags = ["--runner=FnApiRunner"]
    if workers > 1:
        flags += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    start = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(flags)) as pipeline:
        _ = (
            build(pipeline)
            | beam.combiners.Count.Globally()
            | beam.Map(lambda n: count_file.write_text(str(n)))
        )
    return time.perf_counter() - start


def text_baseline(pattern: str, allowlist: Path) -> float:
    """The text rules on the same pool in one loop: normalise, rules, table, shared count, match, credit."""
    start = time.perf_counter()
    rows = [json.loads(line) for line in Path(pattern).read_text().splitlines()]
    captions = [normalize_text(row["caption"]) for row in rows]
    table = TokenFrequencyTable.from_counts(*count_ngrams(captions), TOP_NGRAMS, TOP_NGRAMS)
    kept = [
        (row, c)
        for row, c in zip(rows, captions)
        if check_caption(c) is None and check_rare_tokens(c, table) is None
    ]
    images = Counter(c.casefold() for _, c in {(row["url"], c) for row, c in kept})
    kept = [(row, c) for row, c in kept if check_alt_text_shared(images[c.casefold()]) is None]
    matcher = QueryMatcher(json.loads(allowlist.read_text())).build()
    matched = [(row, matcher.match(c)) for row, c in kept]
    counts = Counter(i for _, ids in matched for i in ids)
    pairs = [(row["url"], ids) for row, ids in matched if ids]
    balance.exact_cap(pairs, counts, balance.pre_download_cap(MARGIN, CAP), 0)
    return time.perf_counter() - start


def image_baseline(sources: list[bytes], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        data = sources[i % len(sources)]
        processed = process_image(data, ImageRules())
        if not isinstance(processed, str):
            sha256_hex(data), phash_hex(processed.image)
    return time.perf_counter() - start


def img2dataset_baseline(sources: list[bytes], count: int) -> float:
    """img2dataset's own Resizer (OpenCV decode + resize + encode, no hashes) on the same images."""
    from img2dataset.resizer import ResizeMode, Resizer

    rules = ImageRules()
    resizer = Resizer(
        image_size=rules.output_side,
        resize_mode=ResizeMode.keep_ratio,
        resize_only_if_bigger=True,
        encode_quality=rules.jpeg_quality,
        min_image_size=rules.min_side,
        max_aspect_ratio=rules.max_aspect,
    )
    start = time.perf_counter()
    for i in range(count):
        resizer(io.BytesIO(sources[i % len(sources)]))
    return time.perf_counter() - start


def report(title: str, unit: str, baseline: float, timings: dict[int, dict[int, float]]) -> list[str]:
    """Rates per core: whole run (start-up included) and, given a smaller run too, the marginal rate
    (extra records / extra seconds: the steady state once the pipeline is built and workers are up)."""
    sizes = sorted(next(iter(timings.values())))
    full = sizes[-1]
    rate = full / baseline
    lines = [f"{title}: {full} records", f"  plain loop, 1 core (baseline)  {rate:>9.0f} {unit}/s/core"]
    for workers, by_size in timings.items():
        whole = full / by_size[full] / workers
        name = "Beam in-process, 1 core" if workers == 1 else f"Beam {workers} worker processes"
        line = f"  {name:<31}{whole:>9.0f} {unit}/s/core whole run ({whole / rate:.2f}× baseline)"
        if len(sizes) > 1 and by_size[full] > by_size[sizes[0]]:
            marginal = (full - sizes[0]) / (by_size[full] - by_size[sizes[0]]) / workers
            line += f"; {marginal:.0f} marginal over {sizes[0]} → {full} ({marginal / rate:.2f}× baseline)"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run per way: a smoke run")
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--workers", default="1,2", help="Beam worker counts to run, e.g. 1 or 1,2")
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    if args.quick:
        text_sizes, image_sizes = [2_000], [20]
    else:
        text_sizes = [args.candidates // 10, args.candidates]
        image_sizes = [args.images // 10, args.images]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        count_file = root / "count.txt"
        pools = {}
        for size in text_sizes:
            (root / f"text{size}").mkdir()
            pools[size] = write_text_pool(root / f"text{size}", size)
        base = text_baseline(*pools[text_sizes[-1]])
        timings = {w: {s: run_beam(lambda p, s=s: text_stages(p, *pools[s]), w, count_file) for s in text_sizes}
                   for w in workers}  # fmt: skip
        lines += report("text stages", "candidates", base, timings)
        lines.append(
            f"  ({count_file.read_text()} of {text_sizes[-1]} candidates left the pre-download balance)"
        )
        sources = photos()
        image_pools = {}
        for size in image_sizes:
            (root / f"images{size}").mkdir()
            image_pools[size] = write_image_pool(root / f"images{size}", size, sources)
        base = image_baseline(sources, image_sizes[-1])
        timings = {w: {s: run_beam(lambda p, s=s: image_stages(p, image_pools[s]), w, count_file) for s in image_sizes}
                   for w in workers}  # fmt: skip
        lines += report("image stages", "images", base, timings)
        full = image_sizes[-1]
        resizer_rate = full / img2dataset_baseline(sources, full)
        line = f"  img2dataset Resizer loop, 1 core {resizer_rate:>8.0f} images/s/core (decode+resize+encode only)"
        if 1 in timings:
            line += f"; Beam in-process whole run = {full / timings[1][full] / resizer_rate:.2f}× this"
        lines.append(line)
        lines.append(f"  ({count_file.read_text()} of {image_sizes[-1]} images reached the dedup verdicts)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
