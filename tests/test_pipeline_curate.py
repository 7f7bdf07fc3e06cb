"""The curation job end to end on Beam's real local runner, over a pool of real photos in WebDataset tars.

One in-process run (module fixture) is checked against what every pool sample should become; a second
run with two worker processes must produce byte-identical shards and manifest.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image
from tokenizers import Tokenizer

from filters.dedup import hamming
from pipelines.curate import main
from tests.pipeline_fixtures import CAP, Pool, reference_run, shared_pool, shared_test_root

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_test_root(tmp_path_factory)


@pytest.fixture(scope="module")
def pool(shared_root: Path) -> Pool:
    return shared_pool(shared_root)


@pytest.fixture(scope="module")
def curated(pool: Pool, shared_root: Path) -> Path:
    return reference_run(pool, shared_root)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def shard_samples(output: Path) -> list[dict]:
    """Every sample, read back with webdataset from the brace shard list that sizes.json describes."""
    sizes = read_json(output / "sizes.json")
    last = len(sizes) - 1
    url = str(output / f"{{00000..{last:05d}}}.tar")
    return list(wds.WebDataset(url, shardshuffle=False, empty_check=False))


def rejects(output: Path) -> list[dict]:
    return pq.read_table(output / "rejects").to_pylist()


def test_conservation_read_equals_kept_plus_rejects(curated: Path, pool: Pool) -> None:
    stats = read_json(curated / "stats.json")
    rows = rejects(curated)
    assert stats["read"] == len(pool.samples)
    assert stats["kept"] == read_json(curated / "manifest.json")["total_samples"]
    assert stats["read"] == stats["kept"] + len(rows)
    assert stats["dropped"] == len(rows) and stats["conserved"] is True
    by_reason: dict[str, int] = {}
    for row in rows:
        by_reason[f"{row['stage']}/{row['reason']}"] = by_reason.get(f"{row['stage']}/{row['reason']}", 0) + 1
    assert by_reason == stats["dropped_by_reason"]
    assert [row["stage"] for row in stats["stages"]] == [
        "read", "text", "caption", "shared_alt_text", "match", "image", "dedup", "balance",
    ]  # fmt: skip


def test_every_sample_meets_its_expected_fate(curated: Path, pool: Pool) -> None:
    """Each pool sample is kept, or rejected at the stage and with the reason the fixture names."""
    by_source = {row["detail"]: row for row in rejects(curated) if row["stage"] == "read"}
    fates = {}
    for row in rejects(curated):
        fates[row["caption"]] = f"{row['stage']}/{row['reason']}"
    kept = {sample["txt"].decode() for sample in shard_samples(curated)}
    for sample in pool.samples:
        if sample.expect == "read/row_unparseable":
            assert any(sample.name in detail for detail in by_source), sample.name
            continue
        fate = "kept" if sample.caption in kept else fates[sample.caption]
        if sample.expect.startswith("kept_or_"):
            alternative = {"over_cap": "balance/query_over_cap", "exact": "dedup/exact_duplicate",
                           "near": "dedup/near_duplicate"}[sample.expect.removeprefix("kept_or_")]  # fmt: skip
            assert fate in ("kept", alternative), (sample.name, fate)
        else:
            assert fate == sample.expect, (sample.name, fate)


def test_exact_cap_holds_and_fills_the_head_query(curated: Path) -> None:
    credited: dict[str, int] = {}
    for sample in shard_samples(curated):
        query = json.loads(sample["json"])["credited_query"]
        credited[query] = credited.get(query, 0) + 1
    assert max(credited.values()) <= CAP
    assert credited["landscape"] == CAP  # 12 matched, all survive the image rules: exactly the cap
    counts = {row["query"]: row for row in read_json(curated / "query_counts.json")["queries"]}
    assert counts["landscape"]["matched"] == 12 and counts["landscape"]["credited"] == CAP


def test_duplicates_collapse_to_one_deterministic_survivor(curated: Path) -> None:
    samples = {json.loads(s["json"])["caption"]: json.loads(s["json"]) for s in shard_samples(curated)}
    astronauts = [c for c in samples if "astronaut" in c]
    coffees = [c for c in samples if "coffee" in c]
    assert len(astronauts) == 1 and len(coffees) == 1
    rows = {row["caption"]: row for row in rejects(curated) if row["stage"] == "dedup"}
    # Same pixels count (astronaut, coffee vs coffee_q40): the smaller key survives.
    exact = next(row for caption, row in rows.items() if "astronaut" in caption)
    assert exact["reason"] == "exact_duplicate" and samples[astronauts[0]]["key"] < exact["key"]
    assert samples[astronauts[0]]["key"] in exact["detail"]
    near = [row for caption, row in rows.items() if "coffee" in caption]
    assert {row["reason"] for row in near} == {"near_duplicate"} and len(near) == 2
    assert all(samples[coffees[0]]["key"] in row["detail"] for row in near)
    assert "small picture of coffee in a cup" in rows  # the smaller image never survives


def test_output_reads_with_webdataset_and_matches_the_manifest(curated: Path) -> None:
    manifest = read_json(curated / "manifest.json")
    sizes = read_json(curated / "sizes.json")
    assert [s["name"] for s in manifest["shards"]] == [f"{i:05d}.tar" for i in range(len(sizes))]
    assert {s["name"]: s["samples"] for s in manifest["shards"]} == sizes
    assert manifest["total_samples"] == sum(sizes.values()) == len(shard_samples(curated))
    assert manifest["seed"] == 7 and manifest["config"]["per_query_cap"] == CAP
    assert {"apache-beam", "pillow", "tokenizers"} <= set(manifest["versions"])
    assert not (curated / "_tmp").exists()
    for sample in shard_samples(curated):
        meta = json.loads(sample["json"])
        assert meta["key"] == sample["__key__"] and "." not in meta["key"]
        assert meta["caption"] == sample["txt"].decode()
        image = Image.open(io.BytesIO(sample["jpg"]))
        assert image.format == "JPEG" and (image.width, image.height) == (meta["width"], meta["height"])
        assert min(image.size) <= 256 and min(meta["original_width"], meta["original_height"]) > 200
        assert len(meta["phash"]) == 16 and len(meta["sha256"]) == 64
        assert meta["credited_query"] in meta["queries"]
        assert all(s.startswith("n") and len(s) == 9 for s in meta["synsets"])
        assert meta["extra"]["status"] == "success" and meta["extra"]["similarity"] == 0.3


def test_samples_in_a_shard_are_sorted_by_key(curated: Path) -> None:
    for shard in sorted(curated.glob("*.tar")):
        keys = [s["__key__"] for s in wds.WebDataset(str(shard), shardshuffle=False, empty_check=False)]
        assert keys == sorted(keys) and keys


def test_kept_images_are_no_near_duplicates_of_each_other(curated: Path) -> None:
    hashes = [json.loads(s["json"])["phash"] for s in shard_samples(curated)]
    radius = read_json(curated / "manifest.json")["config"]["dedup"]["radius"]
    assert all(hamming(a, b) > radius for i, a in enumerate(hashes) for b in hashes[i + 1 :])


def test_vocabulary_and_tokenizer_follow_the_dataset_contract(curated: Path) -> None:
    vocabulary = read_json(curated / "vocabulary.json")
    assert vocabulary["v_tau"] == 2
    counts = [entry["count"] for entry in vocabulary["synsets"]]
    assert counts == sorted(counts, reverse=True) and all(
        entry["kept"] == (entry["count"] >= 2) for entry in vocabulary["synsets"]
    )
    landscape = next(e for e in vocabulary["synsets"] if e["name"] == "landscape.n.01")
    assert landscape["count"] == CAP
    tokenizer = Tokenizer.from_file(str(curated / "tokenizer.json"))
    assert [tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [
        0,
        1,
        2,
        3,
        4,
    ]
    ids = tokenizer.encode("green meadow landscape").ids
    assert ids[0] == 2 and ids[-1] == 3 and 1 not in ids


def test_two_worker_processes_write_byte_identical_shards_and_manifest(
    curated: Path, pool: Pool, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "multi"
    argv = pool.args(output, "--direct_running_mode=multi_processing", "--direct_num_workers=2", report=True)
    assert main([*argv, "--progress=log", "--progress_interval=1"]) == 0
    # Live progress came from the worker processes' counters while the job ran, then the funnel.
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("curate 0:")]
    assert len(progress) >= 3 and "| read 37 (-1) |" in progress[-1] and "balance 10 (-7)" in progress[-1]
    names = sorted(p.name for p in curated.glob("*.tar"))
    assert names == sorted(p.name for p in output.glob("*.tar"))
    for name in [*names, "manifest.json", "sizes.json", "stats.json", "vocabulary.json", "query_counts.json", "tokenizer.json", "examples.json"]:  # fmt: skip
        assert (curated / name).read_bytes() == (output / name).read_bytes(), name


def test_overwrite_is_required_to_replace_a_dataset(
    curated: Path, pool: Pool, capsys: pytest.CaptureFixture
) -> None:
    assert main(pool.args(curated)) == 2
    assert "already holds a dataset" in capsys.readouterr().err
