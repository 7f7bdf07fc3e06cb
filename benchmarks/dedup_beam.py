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

COUNTS: dict[str, int] = {}


def _count(items: int, label: str) -> None:
    COUNTS[label] = items  # module-level, so the in-process runner fills this module's dict


def records_of(hashes: list[int], sha: Callable[[int], str] = lambda i: f"file{i}") -> list[dict]:
    rng = random.Random(len(hashes))
    return [_record(f"{i:09d}", sha(i), value, 200 + rng.randrange(800)) for i, value in enumerate(hashes)]


def _record(key: str, sha: str, phash: int, width: int) -> dict:
    return {"key": key, "sha256": sha, "phash": format(phash, "016x"), "caption": f"caption {key}",
            "original_width": width, "original_height": 300}  # fmt: skip


def run_dedup(records: list[dict], radius: int) -> dict:
    """Seconds, CPU seconds of this process, kept/rejected counts and the largest unit of each grouped step."""
    COUNTS.clear()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    kept, rejects = pipeline | beam.Create(records, reshuffle=False) | Deduplicate(DedupConfig(radius=radius))
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


def skew_cases(identical: int, cluster: int, radius: int) -> dict:
    rng = random.Random(11)
    look = rng.getrandbits(64)
    centre = rng.getrandbits(64)
    near = set()
    while len(near) < cluster:
        value = centre
        for bit in rng.sample(range(64), rng.randint(1, 4)):
            value ^= 1 << bit
        near.add(value)
    cases = {
        "identical_phash": records_of([look] * identical),
        "cluster_within_4": records_of(sorted(near)),
        "real_photos_and_edits": records_of(_photo_hashes()),
    }
    rows = {}
    for name, records in cases.items():
        row = run_dedup(records, radius)
        row["largest_unit_share"] = round(row["largest_unit"] / row["n"], 4)
        rows[name] = row
        print(f"[skew {name}] {row}", flush=True)
    return rows
