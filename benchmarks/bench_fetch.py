"""Fetch throughput against img2dataset's own downloader, over real HTTP on 127.0.0.1.

The demo server serves N rendered JPEGs with an added per-request latency (a far-away web server).
Four runs in one process, same URLs:

1. baseline: ``img2dataset.downloader.download_image`` one URL after another (what a DoFn calling it
   per element would do);
2. ``fetch_url`` one after another: the cost of the guard (getaddrinfo + checks) and the bounded read;
3. ``fetch_url`` on a thread pool of ``--threads``: what one ``_FetchBatchFn`` instance does;
4. ``FetchImages`` on Beam's in-process FnApiRunner: the whole stage, Reshuffle and batching included.

Usage: ``python benchmarks/bench_fetch.py [--images 300] [--latency 0.02] [--threads 16]``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from img2dataset.downloader import download_image

from pipelines.demo.scenes import render_scene
from pipelines.demo.server import DemoServer
from pipelines.fetch import FetchConfig, FetchImages, FetchSession, fetch_url


def _write_images(folder: Path, count: int) -> list[str]:
    names = []
    for index in range(count):
        image = render_scene("ball", "red", "grass", seed=index, size=(320, 320))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=90)
        name = f"{index:05d}.jpg"
        (folder / name).write_bytes(out.getvalue())
        names.append(name)
    return names


def _timed(label: str, run: object, count: int, baseline: float | None) -> float:
    started = time.perf_counter()
    fetched = run()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    if fetched != count:
        raise SystemExit(f"{label}: fetched {fetched} of {count}")
    ratio = f"{baseline / elapsed:5.2f}x baseline" if baseline else "   (baseline)"
    print(f"{label:<46} {elapsed:7.2f} s  {count / elapsed:8.1f} images/s  {ratio}", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the server waits per request")
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    config = FetchConfig(timeout=5, retries=0, threads=args.threads, allowed_networks=("127.0.0.1/32",))
    with tempfile.TemporaryDirectory() as folder:
        names = _write_images(Path(folder), args.images)
        with DemoServer(folder, latency_seconds=args.latency) as server:
            urls = [server.url(f"/images/{name}") for name in names]
            opener = FetchSession(config)

            def img2dataset_sequential() -> int:
                results = [download_image((i, url), 5, "img2dataset", None) for i, url in enumerate(urls)]
                return sum(stream is not None for _, stream, _ in results)

            def fetch_sequential() -> int:
                return sum(fetch_url(url, config, opener).reason is None for url in urls)

            def fetch_threaded() -> int:
                with ThreadPoolExecutor(args.threads) as pool:
                    return sum(
                        r.reason is None for r in pool.map(lambda u: fetch_url(u, config, opener), urls)
                    )

            def fetch_stage() -> int:
                records = [
                    {"key": f"{i:05d}", "url": url, "caption": "a red ball", "extra": {}}
                    for i, url in enumerate(urls)
                ]
                options = PipelineOptions(["--runner=FnApiRunner"])
                with beam.Pipeline(options=options) as pipeline:
                    _ = pipeline | beam.Create(records) | FetchImages(config)
                counters = pipeline.result.metrics().query()["counters"]
                return sum(c.committed for c in counters if c.key.metric.name == "fetch/kept")

            print(f"{args.images} JPEGs of ~{os.path.getsize(Path(folder) / names[0]) // 1024} KB, "
                  f"{args.latency * 1000:.0f} ms server latency, {args.threads} threads, {os.cpu_count()} CPUs")  # fmt: skip
            baseline = _timed(
                "img2dataset download_image, sequential", img2dataset_sequential, args.images, None
            )
            _timed("fetch_url (guarded, bounded), sequential", fetch_sequential, args.images, baseline)
            _timed(f"fetch_url on {args.threads} threads", fetch_threaded, args.images, baseline)
            _timed("FetchImages stage on FnApiRunner", fetch_stage, args.images, baseline)


if __name__ == "__main__":
    main()
