"""Training-loader throughput against a plain decode loop over the same shards.

Baseline (in this process): open each tar with ``tarfile``, decode every JPEG with PIL, resize
the shorter side to the model size and centre-crop; once plain and once with PIL's JPEG draft
mode, which the loader uses, so the ratios separate that gain from the pipeline's own cost. Loader: ``trainer.data.build_train_batches``
(resampled shards, shuffle buffer, decode + random resized crop, tokenisation, multi-hot
targets, collation) with 0 workers (in-process: the per-worker cost) and with N workers.
Shards are built from real photos (Debian's mate-backgrounds and scikit-image's samples),
re-encoded at web sizes, unless ``--data`` names a curated dataset directory.

    python benchmarks/bench_loader.py            # 1,024 samples of ~500 px, 224 px crops
    python benchmarks/bench_loader.py --quick    # a smoke run: 96 samples of ~160 px
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.trainer_fixtures import fixture_vocabulary, plan_samples, train_tokenizer
from trainer.config import DataConfig
from trainer.data import build_train_batches, resolve_dataset
from trainer.data.transforms import eval_pil

MATE = Path("/usr/share/backgrounds/mate/nature")


def photos(side: int) -> list[Image.Image]:
    """The photos, decoded at no more than needed for crops of ~``side`` px (JPEG draft mode)."""
    found = []
    for path in sorted(MATE.glob("*.jpg")):
        image = Image.open(path)
        image.draft("RGB", (2 * side, 2 * side))
        found.append(image.convert("RGB"))
    from skimage import data

    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        found.append(Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB"))
    return found


def build_shards(directory: Path, samples: int, side: int, per_shard: int) -> Path:
    """A dataset directory of random crops of real photos, ~``side`` px, in the curation contract."""
    from contract.vocabulary import save_json

    rng = random.Random(0)
    sources = photos(side)
    plan = plan_samples(samples, seed=0)
    shards = []
    for start in range(0, samples, per_shard):
        name = f"{start // per_shard:05d}.tar"
        with wds.TarWriter(str(directory / name)) as sink:
            for sample in plan[start : start + per_shard]:
                photo = rng.choice(sources)
                w, h = round(side * rng.uniform(1.0, 1.5)), side
                scale = max(w / photo.width, h / photo.height)
                image = photo.resize(
                    (max(w, round(photo.width * scale)), max(h, round(photo.height * scale)))
                )
                left, top = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
                buffer = io.BytesIO()
                image.crop((left, top, left + w, top + h)).save(buffer, format="JPEG", quality=90)
                meta = {"key": sample.key, "caption": sample.caption, "synsets": list(sample.synsets)}
                sink.write(
                    {"__key__": sample.key, "jpg": buffer.getvalue(), "txt": sample.caption, "json": meta}
                )
        shards.append({"name": name, "samples": len(plan[start : start + per_shard])})
    train_tokenizer([s.caption for s in plan]).save(str(directory / "tokenizer.json"))
    save_json(fixture_vocabulary(plan, 1), directory / "vocabulary.json")
    manifest = {"format_version": 1, "shards": shards, "total_samples": samples}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def baseline(urls: list[str], size: int, limit: int, draft: bool = False) -> float:
    """Samples/s of tarfile + PIL decode + resize + centre crop, in this process (``draft``: with
    PIL's JPEG draft mode, as the loader decodes, to separate that gain from the pipeline's cost)."""
    done, started = 0, time.perf_counter()
    while done < limit:
        for url in urls:
            with tarfile.open(url) as tar:
                for member in tar:
                    if member.name.endswith(".jpg"):
                        with Image.open(tar.extractfile(member)) as image:
                            if draft:
                                image.draft("RGB", (size, size))
                            eval_pil(image, size)
                        done += 1
                        if done >= limit:
                            return done / (time.perf_counter() - started)
    return done / (time.perf_counter() - started)


def loader(dataset: Path, size: int, workers: int, batch_size: int, limit: int) -> float:
    """Samples/s of the training loader after its first batch (worker start-up excluded)."""
    meta = resolve_dataset([str(dataset)], None, None, need_tokenizer=True, need_vocabulary=True)
    config = DataConfig(
        paths=[str(dataset)], batch_size=batch_size, workers=workers, shuffle_buffer=256, shuffle_initial=64
    )
    batches = build_train_batches(
        config, meta, image_size=size, context_length=32, hflip=False, seed=0, rank=0
    )
    next(batches)
    steps = max(1, limit // batch_size)
    started = time.perf_counter()
    for _ in range(steps):
        next(batches)
    elapsed = time.perf_counter() - started
    batches.close()
    return steps * batch_size / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, help="a curated dataset directory (default: build one from photos)"
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--side", type=int, default=500, help="shorter side of the generated JPEGs")
    parser.add_argument("--size", type=int, default=224, help="model image size")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, help="where generated shards go (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.side, args.size = 96, 160, 64
    with tempfile.TemporaryDirectory(dir=args.work_dir) as scratch:
        dataset = args.data or build_shards(
            Path(scratch), args.samples, args.side, per_shard=max(16, args.samples // 8)
        )
        urls = list(resolve_dataset([str(dataset)], None, None, False, False).shard_urls)
        batch = 32 if not args.quick else 16
        base = baseline(urls, args.size, args.samples)
        drafted = baseline(urls, args.size, args.samples, draft=True)
        in_process = loader(dataset, args.size, 0, batch, args.samples)
        parallel = loader(dataset, args.size, args.workers, batch, args.samples)
    print(f"shards: {len(urls)}, {args.samples} samples, ~{args.side} px JPEG -> {args.size} px")
    print(f"baseline (tarfile + PIL decode + resize, 1 process): {base:8.1f} samples/s")
    print(
        f"baseline with JPEG draft mode (as the loader):       {drafted:8.1f} samples/s  ratio {drafted / base:.2f}"
    )
    print(
        f"loader, 0 workers (per-worker cost):                 {in_process:8.1f} samples/s  ratio {in_process / base:.2f}"
    )
    print(
        f"loader, {args.workers} workers:                                {parallel:8.1f} samples/s  ratio {parallel / base:.2f}"
        f"  ({parallel / args.workers:.1f} per worker)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
