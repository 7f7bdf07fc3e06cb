"""Dedup at scale: does the near-duplicate search grow linearly, and is every unit of work bounded?

Prints, then ends with one JSON line:

* in-memory ``filters.near_search.near_losers`` on pHash-like hashes (32 of 64 bits set, 5 % planted
  copies 2-6 bits away) from 64k to 2M (``--quick``: 16k to 64k): seconds (the fastest of
  ``--repeats`` runs, 3), ratio per doubling, the largest unit (hashes in one run or scanned set),
  distance checks per hash — once with the plan
  chosen from each n, once with the plan for the largest n fixed across the sweep (``--blocks``, as a
  job sized for its expected n runs);
* the baseline it replaces, in the same process: the 7-band search with all pairs inside each band
  group (the code before issue 10), at the smallest size, as the check count it needs and its time;
* recall and precision against brute force on a sample (100k; ``--quick``: 8k);
* the Beam ``Deduplicate`` composite in-process from 32k to 256k (``--quick``: 4k to 16k): seconds,
  CPU µs per image, ratio per doubling, the largest unit any worker held (Beam distributions);
* the CPU price of one level-1 table in Beam (the same n with 7, 28 and 84 tables at radius 6);
* three skew cases through Beam, each padded with spread-out hashes to n = 100k (``--quick``: 5k):
  100k identical pHashes (2k), 20k distinct hashes within 4 bits of one centre (1k), and the real
  photos, their edits and tiles (``benchmarks/calibrate_phash.py``'s set), as the largest unit over n.

    python benchmarks/bench_dedup.py [--quick] [--radius 6] [--blocks 9]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filters.near_search import (
    NO_WINNER,
    SearchStats,
    brute_force_losers,
    near_losers,
    plan_tables,
)


def pHash_like(n: int, seed: int, planted: float = 0.05) -> np.ndarray:
    """``n`` distinct 64-bit values with exactly 32 bits set; ``planted`` of them are 1-3 swaps from another."""
    rng = np.random.default_rng(seed)
    values = np.zeros(n, dtype=np.uint64)
    for start in range(0, n, 1 << 16):
        stop = min(n, start + (1 << 16))
        ones = np.argsort(rng.random((stop - start, 64), dtype=np.float32), axis=1)[:, :32]
        values[start:stop] = np.bitwise_or.reduce(np.left_shift(np.uint64(1), ones.astype(np.uint64)), axis=1)
    copies = rng.choice(n, int(n * planted), replace=False)
    copy = values[rng.integers(0, n, len(copies))]
    swaps = rng.integers(1, 4, len(copies))
    for swap in range(3):  # a swap moves one set bit: 2 bits of distance, so copies are 2-6 bits away
        moved = copy ^ _random_bit(rng, copy, set_=True) ^ _random_bit(rng, copy, set_=False)
        copy = np.where(swaps > swap, moved, copy)
    values[copies] = copy
    distinct = np.unique(values)
    return distinct[rng.permutation(len(distinct))]


def _random_bit(rng: np.random.Generator, values: np.ndarray, set_: bool) -> np.ndarray:
    bits = (values[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    choice = np.where(bits == (1 if set_ else 0), rng.random(bits.shape), -1.0).argmax(axis=1)
    return np.left_shift(np.uint64(1), choice.astype(np.uint64))


def band_baseline(hashes: np.ndarray, radius: int) -> tuple[int, float]:
    """The search before issue 10: 7 bands of ~9 bits, all pairs inside every band group (checks, seconds)."""
    start, checks = time.perf_counter(), 0
    widths = [10, 9, 9, 9, 9, 9, 9]
    shift = 64
    for width in widths:
        shift -= width
        band = (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(band, kind="stable")
        sorted_band = band[order]
        bounds = np.flatnonzero(np.diff(sorted_band)) + 1
        for group in np.split(order, bounds):
            if len(group) > 1:
                for a, b in combinations(hashes[group].tolist(), 2):
                    checks += 1
                    _ = (a ^ b).bit_count() <= radius
    return checks, time.perf_counter() - start


def in_memory(sizes: list[int], radius: int, blocks: int | None, repeats: int) -> list[dict]:
    rows = []
    for n in sizes:
        hashes = pHash_like(n, seed=n)
        seconds = float("inf")
        for _ in range(repeats):  # the fastest run: one run of a 0.06 s search is mostly the machine's noise
            stats = SearchStats()
            start = time.perf_counter()
            near_losers(hashes, np.arange(len(hashes), dtype=np.int64), radius, stats=stats, blocks=blocks)
            seconds = min(seconds, time.perf_counter() - start)
        row = {"n": len(hashes), "seconds": round(seconds, 3), "largest_unit": stats.largest_unit,
               "checks_per_hash": round(stats.checks / len(hashes), 1)}  # fmt: skip
        if rows:
            row["per_doubling"] = round(seconds / rows[-1]["seconds"] * rows[-1]["n"] * 2 / len(hashes), 2)
        rows.append(row)
        print(f"[in-memory] {row}", flush=True)
    return rows


def recall(n: int, radius: int) -> dict:
    hashes = pHash_like(n, seed=7)
    order = np.random.default_rng(8).permutation(len(hashes)).astype(np.int64)
    found = near_losers(hashes, order, radius) != NO_WINNER
    truth = brute_force_losers(hashes, order, radius) != NO_WINNER
    both = int((found & truth).sum())
    row = {"n": len(hashes), "losers": int(truth.sum()), "recall": both / max(1, int(truth.sum())),
           "precision": both / max(1, int(found.sum()))}  # fmt: skip
    print(f"[recall] {row}", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for the tests")
    parser.add_argument("--radius", type=int, default=6)
    parser.add_argument(
        "--blocks", type=int, default=None, help="the fixed plan's blocks (default: the largest n's)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="in-memory runs per size; the fastest counts")
    args = parser.parse_args(argv)
    from benchmarks.dedup_beam import beam_sizes, price_of_a_table, skew_cases  # Beam side: its own module

    memory_sizes = [16_384 * 2**i for i in range(3)] if args.quick else [65_536 * 2**i for i in range(6)]
    beam_sweep = [4_096 * 2**i for i in range(3)] if args.quick else [32_768 * 2**i for i in range(4)]
    repeats = 1 if args.quick else args.repeats
    memory = in_memory(memory_sizes, args.radius, None, repeats)
    blocks = args.blocks or plan_tables(args.radius, memory_sizes[-1]).blocks
    print(f"[in-memory, plan fixed at {blocks} blocks]")
    fixed = in_memory(memory_sizes, args.radius, blocks, repeats)
    baseline_n = memory_sizes[0] // 4 if args.quick else memory_sizes[0]
    checks, seconds = band_baseline(pHash_like(baseline_n, seed=1), args.radius)
    baseline = {
        "n": baseline_n,
        "checks_per_hash": round(checks / baseline_n, 1),
        "seconds": round(seconds, 2),
    }
    print(f"[baseline: 7 bands, all pairs per group] {baseline}", flush=True)
    exact = recall(8_000 if args.quick else 100_000, args.radius)
    beam_rows = beam_sizes(beam_sweep, args.radius, pHash_like)
    table_price = price_of_a_table(beam_sweep[1], args.radius, pHash_like)
    print(
        f"[beam] a level-1 table costs {table_price['us_per_table']} µs of CPU per image, "
        f"on top of {table_price['us_fixed']} µs",
        flush=True,
    )
    skew = skew_cases(
        *((2_000, 1_000, 5_000) if args.quick else (100_000, 20_000, 100_000)), args.radius, pHash_like
    )
    ratios = [row["per_doubling"] for row in memory[1:]]
    fixed_ratios = [row["per_doubling"] for row in fixed[1:]]
    beam_ratios = [row["per_doubling"] for row in beam_rows[1:]]
    print(
        f"in-memory per doubling: max {max(ratios)} (target <= 2.2); Beam per doubling: max {max(beam_ratios)}"
    )
    print(json.dumps({"radius": args.radius, "in_memory": memory, "in_memory_fixed": fixed, "fixed_blocks": blocks,
                      "max_per_doubling_fixed": max(fixed_ratios), "baseline": baseline, "recall": exact,
                      "beam": beam_rows, "beam_table_price": table_price, "skew": skew, "max_per_doubling": max(ratios),
                      "beam_max_per_doubling": max(beam_ratios)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
