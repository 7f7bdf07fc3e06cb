"""The Beam side of ``bench_dedup.py``: the ``Deduplicate`` composite in-process, and the skew cases."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import apache_beam as beam
import numpy as np
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from filters.dedup import DedupConfig
from pipelines.dedup_stages import Deduplicate
from pipelines.near_units import level_one_plan

COUNTS: dict[str, int] = {}


def _count(items: int, label: str) -> None:
    COUNTS[label] = items  # module-level, so the in-process runner fills this module's dict


def records_of(hashes: list[int], sha: Callable[[int], str] = lambda i: f"file{i}") -> list[dict]:
    rng = random.Random(len(hashes))
    return [_record(f"{i:09d}", sha(i), value, 200 + rng.randrange(800)) for i, value in enumerate(hashes)]


def _record(key: str, sha: str, phash: int, width: int) -> dict:
    return {"key": key, "sha256": sha, "phash": format(phash, "016x"), "caption": f"caption {key}",
            "original_width": width, "original_height": 300}  # fmt: skip


def run_dedup(records: list[dict], radius: int, level_one_target: float | None = None) -> dict:
    """Seconds, CPU seconds of this process, kept/rejected counts and the largest unit of each grouped step."""
    COUNTS.clear()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    kept, rejects = (
        pipeline
        | beam.Create(records, reshuffle=False)
        | Deduplicate(DedupConfig(radius=radius), level_one_target=level_one_target)
    )
    for label, pcollection in (("kept", kept), ("rejects", rejects)):
        _ = (
            pcollection
            | f"Count{label}" >> beam.combiners.Count.Globally()
            | f"Store{label}" >> beam.Map(_count, label)
        )
    wall, cpu = time.perf_counter(), time.process_time()
    result = pipeline.run()
    result.wait_until_finish()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    found = result.metrics().query(MetricsFilter().with_namespace("dedup"))["distributions"]
    units = {d.key.metric.name: d.committed.max for d in found if d.committed is not None}
    return {"n": len(records), "seconds": round(wall, 2), "cpu_us_per_image": round(cpu / len(records) * 1e6),
            "kept": COUNTS.get("kept", 0), "rejected": COUNTS.get("rejects", 0),
            "largest_unit": max(units.values(), default=0), "units": units}  # fmt: skip


def beam_sizes(sizes: list[int], radius: int, make_hashes: Callable[[int, int], np.ndarray]) -> list[dict]:
    rows = []
    for n in sizes:
        row = run_dedup(records_of(make_hashes(n, n).tolist()), radius)
        if rows:
            row["per_doubling"] = round(
                row["seconds"] / rows[-1]["seconds"] * rows[-1]["n"] * 2 / row["n"], 2
            )
        rows.append(row)
        print(f"[beam] {row}", flush=True)
    return rows


def price_of_a_table(n: int, radius: int, make_hashes: Callable[[int, int], np.ndarray]) -> dict:
    """CPU µs per image at ``n`` with 1, 2 and 3 level-1 key blocks: the fixed cost and the cost per table."""
    records = records_of(make_hashes(n, n).tolist())
    rows = []
    for keep in (1, 2, 3):
        target = next(
            t for t in (4096, 512, 64, 8, 1, 0.1, 0.01) if level_one_plan(radius, n, t).keep == keep
        )
        row = run_dedup(records, radius, target)
        row["tables"] = level_one_plan(radius, n, target).tables
        rows.append(row)
        print(f"[beam, {row['tables']} tables] {row}", flush=True)
    slope = (rows[-1]["cpu_us_per_image"] - rows[0]["cpu_us_per_image"]) / (
        rows[-1]["tables"] - rows[0]["tables"]
    )
    base = rows[0]["cpu_us_per_image"] - slope * rows[0]["tables"]
    return {"rows": rows, "us_per_table": round(slope, 1), "us_fixed": round(base)}


def _photo_hashes() -> list[int]:
    """The real photos, their edits and the tiles cut from them, hashed as the pipeline does."""
    from benchmarks.calibrate_phash import (
        EDITS,
        FULL_SIZE,
        decoded,
        encode,
        load_photos,
        pipeline_phash,
        tiles,
    )

    values = []
    for data in load_photos().values():
        image = decoded(data, FULL_SIZE)
        values.append(int(pipeline_phash(data), 16))
        values += [int(pipeline_phash(make(image)), 16) for make in EDITS.values()]
        if min(image.size) >= 800:
            values += [int(pipeline_phash(encode(tile)), 16) for tile in tiles(image, 6)]
    return values


def skew_cases(identical: int, cluster: int, total: int, radius: int, background: Callable) -> dict:
    """Each case padded with spread-out hashes (``background(count, seed)``) to ``total`` images."""
    rng = random.Random(11)
    look = rng.getrandbits(64)
    centre = rng.getrandbits(64)
    near = set()
    while len(near) < cluster:
        value = centre
        for bit in rng.sample(range(64), rng.randint(1, 4)):
            value ^= 1 << bit
        near.add(value)
    cases = {"identical_phash": [look] * identical, "cluster_within_4": sorted(near),
             "real_photos_and_edits": _photo_hashes()}  # fmt: skip
    rows = {}
    for name, hashes in cases.items():
        padding = background(max(0, total - len(hashes)), len(hashes)).tolist() if total > len(hashes) else []
        row = run_dedup(records_of(hashes + padding), radius)
        row["case_images"] = len(hashes)
        row["largest_unit_share"] = round(row["largest_unit"] / row["n"], 4)
        rows[name] = row
        print(f"[skew {name}] {row}", flush=True)
    return rows
