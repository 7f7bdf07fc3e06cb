"""``python -m demo``: generate the pool, serve it on 127.0.0.1, curate it, say where everything is.

Steps (each announced with a banner): render the candidate pool (``pool.py``) under ``OUT/pool``,
start the demo server on 127.0.0.1 (port 8765, ``--port``), hash the evaluation images into a blocklist, run
``pipelines.curate.main`` on Beam's local runner into ``OUT/dataset`` (curate shows its live progress:
one line in place on a terminal, a line every 10 s otherwise), then print the funnel from ``stats.json`` and the paths of
the shards, manifest and report.

The pool lives on 127.0.0.1, so the job runs with ``--allowed_networks=127.0.0.1/32``: the address
guard stays on for everything else (a redirect to the cloud metadata address is refused); everything
else the web does wrong (404s, HTML as image, 100 MB bodies, redirect loops, slow and flaky servers,
X-Robots-Tag opt-outs) is on the server and ends up in the funnel under its reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from contract.files import MANIFEST_FILE, REJECTS_DIR, REPORT_FILE, STATS_FILE
from demo import pool
from demo.photos import MissingPhotos
from testing.web_server import DemoServer, PortUnavailable

DEFAULT_OUT = "out/demo"
# A fixed port by default: the pool's URLs, and so the sample keys derived from them, are then the same
# in every run, and so is the dataset.
DEFAULT_PORT = 8765
# The demo's pool is small (~2,000 candidates): thresholds scaled so every stage has something to do.
# CLIP WIT: 20,000 pairs per query; here the head queries (house, tree, flower, colours) get capped.
DEFAULT_PER_QUERY_CAP = 80
DEMO_FLAGS = (
    "--v_tau=20",  # CatLIP: 500 on billions of pairs; here synsets seen 20+ times stay in the vocabulary
    "--max_alt_texts_per_image=5",  # ALIGN: 1,000; the pool has one image behind 8 alt-texts
    "--tokenizer_vocab_size=1000",
    "--shard_size=500",
    "--fetch_timeout=2",  # seconds; /slow sleeps longer
    "--fetch_retries=1",  # /flaky/* answers 503 once, then the image
    "--fetch_threads=16",
    "--progress_interval=10",  # curate's own progress: a line every 10 s when not on a terminal
)
SLOW_SECONDS = 6.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help="where the pool and the dataset go (default: out/demo)"
    )
    parser.add_argument(
        "--size", type=int, default=pool.DEFAULT_SIZE, help="candidates in the pool (default 2000)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Beam worker processes (1 = in-process, fastest on a small machine)",
    )
    parser.add_argument("--seed", type=int, default=0, help="pool and job seed")
    parser.add_argument(
        "--per-query-cap",
        type=int,
        default=DEFAULT_PER_QUERY_CAP,
        help=f"pairs kept per allowlist query (default {DEFAULT_PER_QUERY_CAP}; scale it with --size)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="server port on 127.0.0.1 (0: any free one)"
    )
    args = parser.parse_args(argv)
    if args.size < pool.MIN_SIZE:
        parser.error(f"--size must be at least {pool.MIN_SIZE}")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.per_query_cap < 1:
        parser.error("--per-query-cap must be at least 1")
    return args


def curate_argv(
    pool_dir: Path,
    dataset_dir: Path,
    blocklist: Path,
    workers: int,
    seed: int,
    per_query_cap: int = DEFAULT_PER_QUERY_CAP,
) -> list[str]:
    """The ``pipelines.curate`` command line the demo runs."""
    argv = [
        f"--input={pool_dir / pool.TABLE_FILE}",
        f"--allowlist={pool_dir / pool.ALLOWLIST_FILE}",
        f"--output={dataset_dir}",
        "--overwrite",
        f"--eval_blocklist={blocklist}",
        # The pool is served on 127.0.0.1: let the job reach that one address and keep the guard on for
        # everything else, so the pool's redirect to the cloud metadata address is refused.
        "--allowed_networks=127.0.0.1/32",
        f"--seed={seed}",
        f"--per_query_cap={per_query_cap}",
        *DEMO_FLAGS,
    ]
    if workers > 1:
        argv += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    return argv


def run(argv: list[str] | None = None) -> int:
    """The whole demo; returns the exit code of the curation job (0 on success)."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    # Beam logs a warning at import when its optional GCP extras are absent: noise in a local demo.
    logging.getLogger().addFilter(lambda record: "apitools not found" not in record.getMessage())
    out = Path(args.out)
    started = time.monotonic()
    try:
        with DemoServer(out / "pool" / pool.IMAGES_DIR, port=args.port, slow_seconds=SLOW_SECONDS) as server:
            code = _curate_served_pool(args, out, server, started)
    except PortUnavailable as error:
        print(f"[demo] {error}: pass --port 0 (any free port) or another port", file=sys.stderr)
        return 2
    except MissingPhotos as error:
        print(f"[demo] {error}", file=sys.stderr)
        return 2
    if code != 0:
        print(f"[demo] the curation job failed with exit code {code}", file=sys.stderr)
        return code
    _banner(5, f"done in {time.monotonic() - started:.0f} s")
    for line in describe_dataset(out / "dataset"):
        print(line)
    return 0


def _curate_served_pool(args: argparse.Namespace, out: Path, server: DemoServer, started: float) -> int:
    from pipelines.curate import main as curate_main

    pool_dir, blocklist = out / "pool", out / "eval_blocklist.json"
    _banner(1, f"generating a pool of {args.size} candidates under {pool_dir}")
    _fresh_pool_dir(pool_dir)
    pool.generate_pool(pool_dir, args.size, args.seed, server.base_url)
    summary = json.loads((pool_dir / pool.SUMMARY_FILE).read_text(encoding="utf-8"))
    print(f"      {_pool_line(summary['sources'])}  ({time.monotonic() - started:.0f} s)")
    _banner(2, f"serving {pool_dir / pool.IMAGES_DIR} and the bad endpoints at {server.base_url}")
    _banner(3, f"hashing the evaluation images in {pool_dir / pool.EVAL_DIR} into {blocklist}")
    _build_blocklist(pool_dir / pool.EVAL_DIR, blocklist)
    job = curate_argv(pool_dir, out / "dataset", blocklist, args.workers, args.seed, args.per_query_cap)
    _banner(4, "curating on Beam's local runner: python -m pipelines.curate " + " ".join(job))
    return curate_main(job)


def describe_dataset(dataset_dir: Path) -> list[str]:
    """Where the outputs are and the funnel, as printable lines."""
    stats = json.loads((dataset_dir / STATS_FILE).read_text(encoding="utf-8"))
    manifest = json.loads((dataset_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    shards = manifest.get("shards", [])
    lines = [
        f"  shards:   {len(shards)} under {dataset_dir} ({', '.join(s['name'] for s in shards[:4])}"
        f"{', …' if len(shards) > 4 else ''})",
        f"  manifest: {dataset_dir / MANIFEST_FILE}",
    ]
    report = dataset_dir / REPORT_FILE
    lines.append(
        f"  report:   {report}" if report.is_file() else "  report:   not written (see the job's log)"
    )
    lines.append(f"  rejects:  {dataset_dir / REJECTS_DIR}/*.parquet")
    lines.append(f"  funnel:   read {stats['read']} → kept {stats['kept']} (dropped {stats['dropped']})")
    for row in stats.get("stages", []):
        reasons = sorted(row.get("reasons", {}).items(), key=lambda item: (-item[1], item[0]))
        detail = ", ".join(f"{reason} {count}" for reason, count in reasons)
        lines.append(f"    {row['stage']:<22} {row['in']:>6} → {row['out']:>6}  {detail}")
    return lines


def _banner(step: int, text: str) -> None:
    print(f"[demo {step}/5] {text}", flush=True)


def _pool_line(sources: dict[str, int]) -> str:
    groups: dict[str, int] = {}
    for source, count in sources.items():
        group = source.split("/", 1)[0]
        groups[group] = groups.get(group, 0) + count
    return ", ".join(f"{group} {count}" for group, count in sorted(groups.items(), key=lambda x: -x[1]))


def _fresh_pool_dir(pool_dir: Path) -> None:
    """Removes a previous demo pool (recognised by its pool.json), never a folder the demo did not write."""
    if (pool_dir / pool.SUMMARY_FILE).is_file():
        shutil.rmtree(pool_dir)
    elif pool_dir.exists() and any(pool_dir.iterdir()):
        raise SystemExit(f"[demo] {pool_dir} exists and is not a demo pool: pass another --out")


def _build_blocklist(eval_dir: Path, target: Path) -> None:
    from filters.eval_blocklist import build_eval_blocklist

    blocklist = build_eval_blocklist([eval_dir])
    blocklist.save(target)
    print(f"      {len(blocklist)} evaluation images hashed")
