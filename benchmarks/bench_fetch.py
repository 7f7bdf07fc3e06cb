"""Fetching from a rate-limited, far-away host: img2dataset's downloader, today's fetcher, the polite one.

The demo server on 127.0.0.1 plays a far-away image host: ``--latency`` seconds per request,
``--connect-latency`` more per new connection (TCP + TLS handshakes), and above ``--rate`` requests per
second it answers ``429 Too Many Requests`` with ``Retry-After: 1``. The same URLs are fetched on
``--threads`` threads by:

1. img2dataset 1.47's ``download_image_with_retry`` (the baseline): a new connection per request,
   immediate retries;
2. ``fetch_url`` with the politeness off (``keep_alive=False``, no backoff, Retry-After ignored): what
   the fetcher did before keep-alive and backoff;
3. ``fetch_url`` as configured by default: keep-alive, exponential backoff with jitter, Retry-After
   honoured (and holding back the whole host);
4. the same with ``host_rate`` set to the server's rate: it never provokes a 429.

Each round runs all four in turn (A, B, C, D, A, B, …); figures are medians over ``--rounds`` rounds,
ratios against the baseline's median in the same process. Printed per fetcher: seconds, images fetched
of those asked for, requests the server saw, 429s it sent, connections it accepted.

Usage: ``python benchmarks/bench_fetch.py [--images 400] [--rounds 3] [--quick]``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from demo.scenes import render_scene
from pipelines.fetch import FetchConfig, FetchSession, fetch_url, is_disallowed
from testing.web_server import DemoServer


@dataclass
class Run:
    seconds: float
    fetched: int
    requests: int
    too_many: int
    connections: int


def _write_images(folder: Path, count: int) -> list[str]:
    names = []
    for index in range(count):
        image = render_scene("ball", "red", "grass", seed=index, size=(256, 256))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85)
        name = f"{index:05d}.jpg"
        (folder / name).write_bytes(out.getvalue())
        names.append(name)
    return names


def _measure(server: DemoServer, fetch_all: Callable[[], int]) -> Run:
    requests, too_many, connections = server.total_hits(), server.rate_limited, server.connections
    time.sleep(1.1)  # the server's rate window starts empty for every run
    started = time.perf_counter()
    fetched = fetch_all()
    return Run(
        time.perf_counter() - started,
        fetched,
        server.total_hits() - requests,
        server.rate_limited - too_many,
        server.connections - connections,
    )


def fetchers(urls: list[str], threads: int, rate: float, retries: int) -> dict[str, Callable[[], int]]:
    from img2dataset.downloader import download_image_with_retry

    common = dict(timeout=10.0, retries=retries, threads=threads, allowed_networks=("127.0.0.1/32",))
    configs = {
        "fetch_url, politeness off (before)": FetchConfig(
            **common, keep_alive=False, backoff_base=0.0, retry_after=False
        ),
        "fetch_url, default (keep-alive, backoff, Retry-After)": FetchConfig(**common),
        f"fetch_url, default + host_rate={rate:g}": FetchConfig(**common, host_rate=rate),
    }

    def img2dataset() -> int:
        def one(item: tuple[int, str]) -> bool:
            _, stream, _ = download_image_with_retry(item, 10, retries, "img2dataset", None)
            return stream is not None

        with ThreadPoolExecutor(threads) as pool:
            return sum(pool.map(one, enumerate(urls)))

    def ours(config: FetchConfig) -> Callable[[], int]:
        def run() -> int:
            session = FetchSession(config)  # a fresh session per run: no connections carried over
            with ThreadPoolExecutor(threads) as pool:
                return sum(r.reason is None for r in pool.map(lambda u: fetch_url(u, config, session), urls))

        return run

    return {"img2dataset download_image_with_retry": img2dataset} | {
        label: ours(config) for label, config in configs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request at the server")
    parser.add_argument("--connect-latency", type=float, default=0.05, help="seconds per new connection")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s the server takes before 429s")
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help="60 images, 3 rounds, 30 requests/s (a smoke test)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.rounds, args.rate = 60, 3, 30.0
    is_disallowed()  # img2dataset's slow first import, outside every timed run
    with tempfile.TemporaryDirectory() as folder:
        names = _write_images(Path(folder), args.images)
        with DemoServer(
            folder,
            latency_seconds=args.latency,
            connect_latency_seconds=args.connect_latency,
            keep_alive=True,
            rate_limit=args.rate,
        ) as server:
            urls = [server.url(f"/limited/{name}") for name in names]
            runs: dict[str, list[Run]] = {}
            table = fetchers(urls, args.threads, args.rate, args.retries)
            for _ in range(args.rounds):
                for label, fetch_all in table.items():
                    runs.setdefault(label, []).append(_measure(server, fetch_all))
    print(
        f"{args.images} JPEGs, {args.threads} threads, {args.retries} retries; server: "
        f"{args.latency * 1000:.0f} ms per request, {args.connect_latency * 1000:.0f} ms per new connection, "
        f"429 + Retry-After: 1 above {args.rate:g} requests/s; median of {args.rounds} interleaved rounds, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'fetcher':<54}{'seconds':>8}{'fetched':>9}{'requests':>9}{'429s':>6}{'conns':>6}  vs baseline")
    baseline = None
    for label, measured in runs.items():
        seconds = statistics.median(r.seconds for r in measured)
        fetched = statistics.median(r.fetched for r in measured)
        row = [
            statistics.median(getattr(r, f) for r in measured)
            for f in ("requests", "too_many", "connections")
        ]
        if baseline is None:
            baseline = (seconds, fetched)
            ratio = "(baseline)"
        else:
            ratio = f"{baseline[0] / seconds:.2f}x the speed, {fetched / max(baseline[1], 1):.2f}x the images"
        print(f"{label:<54}{seconds:>8.2f}{fetched:>9.0f}{row[0]:>9.0f}{row[1]:>6.0f}{row[2]:>6.0f}  {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
