"""The scale plan for a large candidate pool: per stage the records, CPU, shuffle bytes and worker memory.

Per-core rates come from the project's benchmarks (pass them as flags: bench_matching.py,
bench_image_rules.py, bench_synsets.py print them); ``--measure`` adds figures measured here with the
project's own code (the near-duplicate search's rate inside one unit of work and its slowest unit,
bytes per side-input dict entry, the token table, the eval blocklist, the size of a stored JPEG). Everything else is an assumption with a flag,
printed in the output's assumption table. Prints Markdown (deploy/README.md §7 is this output).

    python benchmarks/scale_plan.py --measure --match-rate 40000 --text-rate 60000 --matcher-mb 300 \\
        --image-rate 60 --label-rate 1500
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from filters.dedup import DEFAULT_DEDUP
from filters.eval_blocklist import EvalBlocklist, EvalEntry
from filters.image import process_image
from filters.near_search import near_losers
from filters.rare_tokens import TokenFrequencyTable
from pipelines.near_units import level_one_plan, target_group

GB = 1e9
POINT_BYTES = 60  # (table, key) + (sample key, pHash, pixels) as one shuffled element


@dataclass
class Assumptions:
    """Not measured here: each is a flag. Survival = share of records a stage keeps."""

    pool: float = 1e9
    row_bytes: float = 200  # url + alt-text + a few columns, compressed parquet
    survive_text: float = 0.70  # junk, length 3–20 words, rare tokens
    survive_shared: float = 0.90  # alt-texts shared by > 10 images
    survive_match: float = 0.50  # MetaCLIP: about half of English alt-texts match the 500k list
    queries_per_match: float = 3.5  # MetaCLIP: entries matched per matching text
    survive_pre_balance: float = 0.60  # 20k cap × (1 + margin) before download
    survive_fetch: float = 0.70  # dead links, timeouts, refusals
    survive_image: float = 0.80  # > 200 px, aspect < 3, decodable
    survive_dedup: float = 0.85  # exact + near + eval-set + > 1000 alt-texts
    survive_final: float = 0.90  # exact 20k cap after dedup
    image_kb: float = 150  # average downloaded image
    ngrams_per_caption: float = 19  # ~10 unigrams + ~9 bigrams
    combine_keep: float = 0.5  # share of pre-combine elements a lifted combine still shuffles
    shared_captions: float = 5e6  # alt-texts over the 10-image limit (the DropShared side input)
    eval_images: float = 1e5  # evaluation images in the blocklist
    light_record_bytes: float = 600  # a record without its JPEG, pickled
    workers: int = 500
    vcpus: int = 8  # n2-standard-8 / n2-highmem-8
    worker_gbps: float = 2.0  # sustained download per worker VM
    fetches_per_worker: float = 500  # images/s one worker VM completes (bound by remote latency, not CPU)
    efficiency: float = 0.7  # share of vCPU time spent in the stage's own code
    read_rate: float = 20_000  # rows/s per core to read parquet into records
    phash_radius: int = DEFAULT_DEDUP.radius  # the near-duplicate radius (sets the level-1 tables)
    dedup_max_group: int = DEFAULT_DEDUP.max_group  # --dedup_max_group: hashes per unit, sets the tables too


@dataclass
class Measured:
    """Per-core figures; the first five come from the benchmarks, the rest from ``--measure``."""

    match_rate: float | None = None  # captions/s per CPU s, 500k-entry Aho-Corasick (bench_matching)
    text_rate: float | None = None  # normalize_text + check_caption captions/s per CPU s (bench_matching)
    matcher_mb: float | None = None  # matcher memory for 500k entries (bench_matching)
    image_rate: float | None = None  # rule path images/s per core, ≤ 640 px JPEGs (bench_image_rules)
    label_rate: float | None = None  # synset labelling captions/s per core, warm (bench_synsets)
    beam_text_rate: float | None = (
        None  # read → pre-download balance on Beam, candidates/s/core (bench_pipeline)
    )
    beam_image_rate: float | None = None  # image check + hash + dedup on Beam, images/s/core (bench_pipeline)
    dedup_us_fixed: float | None = (
        None  # Deduplicate on Beam, CPU µs per image besides the tables (bench_dedup)
    )
    dedup_us_per_table: float | None = None  # ... and per level-1 table an image is emitted to (bench_dedup)
    unit_search_rate: float | None = None  # hashes/s per core through near_losers in one level-1 group
    worst_unit_seconds: float | None = None  # one unit of max_group hashes within 4 bits of one centre
    dict_entry_bytes: float | None = None  # {16-byte digest: count} side-input entry
    token_table_mb: float | None = None  # TokenFrequencyTable of 1M unigrams + 1M bigrams
    blocklist_mb_per_100k: float | None = None  # EvalBlocklist with 100k entries
    jpeg_kb: float | None = None  # a stored JPEG (shorter side 256)


def _allocated(build: Callable[[], object]) -> tuple[float, object]:
    tracemalloc.start()
    value = build()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size, value


def measure(m: Measured, a: Assumptions) -> None:
    """Fills the ``--measure`` figures with the project's own functions on this machine."""
    rng = random.Random(0)
    m.unit_search_rate, m.worst_unit_seconds = _unit_search(rng, a)
    n = 200_000
    size, _ = _allocated(
        lambda: {hashlib.blake2b(str(i).encode(), digest_size=16).digest(): i for i in range(n)}
    )
    m.dict_entry_bytes = size / n
    words = [f"{rng.choice('bcdfgklmnprst')}{i:x}ing" for i in range(n)]
    size, _ = _allocated(
        lambda: TokenFrequencyTable.from_counts(
            {w: n - i for i, w in enumerate(words)}, {f"{w} {w[::-1]}": i for i, w in enumerate(words)}, n, n
        )
    )
    m.token_table_mb = size / 1e6 * (1e6 / n)
    entries = [
        EvalEntry("eval", f"{rng.getrandbits(256):064x}", f"{rng.getrandbits(64):016x}")
        for _ in range(n // 2)
    ]
    size, _ = _allocated(lambda: EvalBlocklist(entries))
    m.blocklist_mb_per_100k = size / 1e6 * (1e5 / len(entries))
    m.jpeg_kb = _stored_jpeg_kb()


def _unit_search(rng: random.Random, a: Assumptions) -> tuple[float, float]:
    """Hashes/s inside a level-1 unit of the planned size, and the seconds of a dense unit of max_group."""
    n_dedup, radius, plan = _dedup_plan(a)
    size = int(min(n_dedup / 2**plan.key_bits, a.dedup_max_group))
    mask = plan.masks[0]
    units = max(1, 200_000 // size)
    groups = []
    for _ in range(units):  # spread-out hashes that share table 0's key: what a unit holds on web data
        key = rng.getrandbits(64) & mask
        groups.append(np.array([(rng.getrandbits(64) & ~mask) | key for _ in range(size)], dtype=np.uint64))
    start = time.process_time()
    for group in groups:
        near_losers(group, np.arange(len(group)), radius, fixed_mask=mask)
    rate = units * size / (time.process_time() - start)
    centre = rng.getrandbits(64)
    dense = set()
    while len(dense) < a.dedup_max_group:
        value = centre
        for bit in rng.sample(range(64), rng.randint(1, 4)):
            value ^= 1 << bit
        dense.add(value)
    start = time.process_time()
    near_losers(np.array(sorted(dense), dtype=np.uint64), np.arange(len(dense)), radius)
    return rate, time.process_time() - start


def _records_in(a: Assumptions) -> dict[str, float]:
    """Records entering each stage, from the pool size and the survival assumptions."""
    counts = {"text": a.pool * a.survive_text}
    counts["match"] = counts["text"] * a.survive_shared
    counts["pre"] = counts["match"] * a.survive_match
    counts["fetch"] = counts["pre"] * a.survive_pre_balance
    counts["image"] = counts["fetch"] * a.survive_fetch
    counts["dedup"] = counts["image"] * a.survive_image
    counts["final"] = counts["dedup"] * a.survive_dedup
    counts["out"] = counts["final"] * a.survive_final
    return counts


def _dedup_plan(a: Assumptions):
    n_dedup = _records_in(a)["dedup"]
    return (
        n_dedup,
        a.phash_radius,
        level_one_plan(a.phash_radius, int(n_dedup), target_group(a.dedup_max_group)),
    )


def _stored_jpeg_kb() -> float:
    import skimage.data
    from PIL import Image

    sizes = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        buffer = io.BytesIO()
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(buffer, "JPEG", quality=90)
        sizes.append(len(process_image(buffer.getvalue()).jpeg))
    return sum(sizes) / len(sizes) / 1e3


def plan(a: Assumptions, m: Measured) -> list[dict[str, object]]:
    """One row per stage: records in, core-hours, shuffle GB, memory per SDK process (MB), note."""
    counts = _records_in(a)
    n_text, n_match, n_pre, n_fetch = counts["text"], counts["match"], counts["pre"], counts["fetch"]
    n_image, n_dedup, n_final, n_out = counts["image"], counts["dedup"], counts["final"], counts["out"]
    jpeg = (m.jpeg_kb or 0) * 1e3
    _, _, near_plan = _dedup_plan(a)
    tables, key_bits = near_plan.tables, near_plan.key_bits
    fetch_bytes = n_fetch * a.image_kb * 1e3
    fetch_hours = (
        max(n_fetch / (a.workers * a.fetches_per_worker), fetch_bytes * 8 / (a.workers * a.worker_gbps * 1e9))
        / 3600
    )

    def hours(records: float, rate: float | None) -> float | None:
        return records / rate / 3600 if rate else None

    return [
        dict(stage="ReadCandidates", records=a.pool, core_h=hours(a.pool, a.read_rate),
             shuffle=None, memory=None,
             note=f"{a.pool * a.row_bytes / GB:,.0f} GB read; only read units (row groups, files) are shuffled"),
        dict(stage="CleanText", records=a.pool, core_h=hours(a.pool, m.text_rate),
             shuffle=a.pool * a.ngrams_per_caption * a.combine_keep * 30 / GB, memory=m.token_table_mb,
             note="n-gram document frequencies (lifted Count) → 1M+1M token table as a side input"),
        dict(stage="DropSharedAltTexts", records=n_text, core_h=None,
             shuffle=n_text * (48 + 24) / GB, memory=_mb(a.shared_captions, m.dict_entry_bytes),
             note=f"distinct (caption, url) digests, then images per caption; {a.shared_captions:,.0f} "
                  "over-limit digests held by every worker"),
        dict(stage="MatchQueries", records=n_match, core_h=hours(n_match, m.match_rate),
             shuffle=n_match * a.survive_match * a.queries_per_match * 16 * a.combine_keep / GB,
             memory=(m.matcher_mb or 0) + (_mb(5e5, m.dict_entry_bytes) or 0) or None,
             note="Aho-Corasick over 500k entries, per-query counts (lifted) as a 500k-entry side input"),
        dict(stage="BalanceBeforeDownload", records=n_pre, core_h=None, shuffle=n_pre * 40 / GB, memory=None,
             note="Top.SmallestPerKey(cap) on (query, rank) tuples; records are never grouped"),
        dict(stage="FetchImages", records=n_fetch, core_h=None, shuffle=n_fetch * a.light_record_bytes / GB,
             memory=None,
             note=f"{fetch_bytes / 1e12:,.0f} TB downloaded: {fetch_hours:,.1f} h on {a.workers} workers "
                  f"(the slower of {a.fetches_per_worker:g} images/s and {a.worker_gbps:g} Gbit/s per worker)"),
        dict(stage="CheckAndHashImages", records=n_image, core_h=hours(n_image, m.image_rate),
             shuffle=None, memory=None, note="decode, rules, resize, JPEG, sha256 + pHash (fused with fetch)"),
        dict(stage="Deduplicate", records=n_dedup, core_h=_dedup_hours(n_dedup, tables, m),
             shuffle=n_dedup * (120 + 60 + tables * POINT_BYTES + a.light_record_bytes) / GB,
             memory=(m.blocklist_mb_per_100k or 0) * a.eval_images / 1e5 or None,
             note=f"exact and equal-pHash copies by combiners; each image in {tables} level-1 tables of "
                  f"{key_bits} bits (~{n_dedup / 2**key_bits:,.0f} per key), no unit over "
                  f"{a.dedup_max_group:,} hashes; slowest unit (dense cluster) "
                  f"{_fmt(m.worst_unit_seconds, '.2f')} s"),
        dict(stage="BalanceQueries", records=n_final, core_h=None, shuffle=n_final * 40 / GB, memory=None,
             note="exact 20k cap, same tuple combine"),
        dict(stage="LabelSynsets", records=n_out, core_h=hours(n_out, m.label_rate), shuffle=None, memory=None,
             note="POS tagging + WordNet lookups"),
        dict(stage="WriteShards", records=n_out, core_h=None, shuffle=n_out * (jpeg + a.light_record_bytes) / GB,
             memory=None, note=f"{n_out / 1e4:,.0f} shards of 10k; {n_out * jpeg / 1e12:,.1f} TB of JPEGs joined by bucket"),
    ]  # fmt: skip


def _dedup_hours(images: float, tables: int, m: Measured) -> float | None:
    """Beam's measured price per image and per table, plus the searches inside units of the planned size."""
    if m.dedup_us_fixed is None or m.dedup_us_per_table is None or not m.unit_search_rate:
        return None
    per_image_us = m.dedup_us_fixed + tables * (m.dedup_us_per_table + 1e6 / m.unit_search_rate)
    return images * per_image_us / 1e6 / 3600


def _mb(entries: float, entry_bytes: float | None) -> float | None:
    return entries * entry_bytes / 1e6 if entry_bytes else None


def _fmt(value: object, spec: str) -> str:
    return "?" if value is None else format(value, spec)


def render(a: Assumptions, m: Measured) -> str:
    rows = plan(a, m)
    lines = ["| stage | records in | CPU core-hours | shuffle GB | memory / SDK process (MB) | what dominates |",
             "|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['stage']} | {_fmt(r['records'], ',.2e')} | {_fmt(r['core_h'], ',.0f')} | "
            f"{_fmt(r['shuffle'], ',.0f')} | {_fmt(r['memory'], ',.0f')} | {r['note']} |"
        )
    by_stage = {r["stage"]: r for r in rows}
    core_h = sum(r["core_h"] or 0 for r in rows)
    shuffle = sum(r["shuffle"] or 0 for r in rows)
    cores = a.workers * a.vcpus
    lines += ["", f"Stage code alone: {core_h:,.0f} core-hours (? = not measured, left out), "
                  f"{shuffle / 1e3:,.1f} TB shuffled; on {a.workers} workers × {a.vcpus} vCPU at "
                  f"{a.efficiency:.0%} efficiency: {core_h / (cores * a.efficiency):,.1f} h."]  # fmt: skip
    if m.beam_text_rate and m.beam_image_rate:
        beam_h = (
            a.pool / m.beam_text_rate / 3600
            + by_stage["CheckAndHashImages"]["records"] / m.beam_image_rate / 3600
            + (by_stage["Deduplicate"]["core_h"] or 0)  # the unit searches, beyond the per-record cost
            + (by_stage["LabelSynsets"]["core_h"] or 0)
        )
        lines.append(
            f"With Beam's measured cost per record (bench_pipeline: {m.beam_text_rate:,.0f} candidates/s/core "
            f"through the text stages, {m.beam_image_rate:,.0f} images/s/core through image checks + dedup) "
            f"plus the near-duplicate unit searches and labelling: {beam_h:,.0f} core-hours = {beam_h / cores:,.1f} h "
            f"on {a.workers} × {a.vcpus} vCPU."
        )
    lines += ["", "| figure | value | source |", "|---|---:|---|"]
    for f in fields(Measured):
        value = getattr(m, f.name)
        lines.append(
            f"| {f.name} | {_fmt(value, ',.4g')} | measured: {_SOURCES[f.name] if value is not None else 'not given'} |"
        )
    for f in fields(Assumptions):
        lines.append(f"| {f.name} | {getattr(a, f.name):,.4g} | assumed (--{f.name.replace('_', '-')}) |")
    return "\n".join(lines)


_SOURCES = {
    "match_rate": "bench_matching.py, Aho-Corasick captions per CPU-s",
    "text_rate": "bench_matching.py, normalize + check_caption per CPU-s",
    "matcher_mb": "bench_matching.py, peak RSS of the process that built the matcher",
    "image_rate": "bench_image_rules.py, rule path on ≤ 640 px JPEGs, per CPU-s",
    "label_rate": "bench_synsets.py, labels() with warm caches",
    "beam_text_rate": "bench_pipeline.py, text stages on Beam in-process, marginal",
    "beam_image_rate": "bench_pipeline.py, image stages on Beam in-process, marginal",
    "dedup_us_fixed": "bench_dedup.py, Deduplicate on Beam in-process at 64k with 7, 28 and 84 tables: intercept",
    "dedup_us_per_table": "bench_dedup.py, the same runs: CPU µs per image per level-1 table",
    "unit_search_rate": "scale_plan.py --measure, near_losers in level-1 units of the planned size (spread-out)",
    "worst_unit_seconds": "scale_plan.py --measure, near_losers on dedup_max_group hashes within 4 bits of one centre",
    "dict_entry_bytes": "scale_plan.py --measure, tracemalloc of 200k entries",
    "token_table_mb": "scale_plan.py --measure, TokenFrequencyTable scaled to 1M + 1M",
    "blocklist_mb_per_100k": "scale_plan.py --measure, EvalBlocklist of 100k entries",
    "jpeg_kb": "scale_plan.py --measure, process_image on 4 scikit-image photos",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="measure the dedup/memory/JPEG figures here")
    for group in (Assumptions(), Measured()):
        for f in fields(group):
            default = getattr(group, f.name)
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=float if f.type != "int" else int,
                                default=default, help=f"default {default}")  # fmt: skip
    args = vars(parser.parse_args(argv))
    a = Assumptions(**{f.name: args[f.name] for f in fields(Assumptions)})
    m = Measured(**{f.name: args[f.name] for f in fields(Measured)})
    if args["measure"]:
        measure(m, a)
    print(render(a, m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
