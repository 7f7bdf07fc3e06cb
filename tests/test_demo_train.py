"""The demo's held-out set (deterministic, ten object classes, disjoint from the pool) and
``python -m demo.train`` end to end on a tiny dataset for a few steps.

The accuracy claim (tiny CLIP/ALIGN/CatLIP clearly above chance on the held-out scenes) is a
measurement of the full run, ``bash scripts/train_demo.sh``, not asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from demo import heldout, pool
from demo.scenes import KINDS
from demo.train import RESULTS_FILE, run
from filters.dedup import DEFAULT_DEDUP, hamming, phash_hex, sha256_hex
from tests.trainer_fixtures import make_dataset
from trainer.eval import read_image_folder


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_heldout_folder_is_deterministic_with_one_folder_per_object_noun(tmp_path: Path) -> None:
    first = heldout.render_heldout(tmp_path / "a", per_class=3, seed=0)
    second = heldout.render_heldout(tmp_path / "b", per_class=3, seed=0)
    assert _tree(first) == _tree(second)
    folder = read_image_folder(first)
    assert folder.classes == tuple(sorted(KINDS)) and len(folder.items) == 30
    assert folder.labels == sorted(KINDS)  # prompts read "a photo of a ball."
    with Image.open(folder.items[0][0]) as image:
        assert image.format == "JPEG" and min(image.size) >= 256 and max(image.size) <= 400
    # Another seed is another set of scenes; rendering again over a held-out set replaces it.
    other = heldout.render_heldout(tmp_path / "a", per_class=2, seed=1)
    assert len(read_image_folder(other).items) == 20
    assert not {sha256_hex(d) for d in _tree(other).values() if d[:2] == b"\xff\xd8"} & {
        sha256_hex(d) for d in _tree(second).values()
    }
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a held-out set")
    with pytest.raises(FileExistsError, match="not a held-out set"):
        heldout.render_heldout(tmp_path / "mine", per_class=1)
    with pytest.raises(ValueError, match="per_class"):
        heldout.heldout_scenes(per_class=0)


def test_heldout_scenes_are_never_pool_scenes(tmp_path: Path) -> None:
    root = pool.generate_pool(tmp_path / "pool", n=pool.MIN_SIZE, seed=0)
    pool_images = [p for p in (root / pool.IMAGES_DIR).iterdir()]
    test = heldout.render_heldout(tmp_path / "heldout", per_class=4, seed=0)
    test_images = [path for path, _ in read_image_folder(test).items]
    assert not {sha256_hex(p.read_bytes()) for p in pool_images} & {
        sha256_hex(p.read_bytes()) for p in test_images
    }
    # Not even near duplicates at the curation job's pHash radius.
    pool_hashes = []
    for path in pool_images:
        try:
            with Image.open(path) as image:
                pool_hashes.append(phash_hex(image.convert("RGB")))
        except (OSError, Image.DecompressionBombError):  # the pool's broken files (truncated, HTML, bomb)
            continue
    closest = min(
        hamming(phash_hex(Image.open(path).convert("RGB")), other)
        for path in test_images
        for other in pool_hashes
    )
    assert closest > DEFAULT_DEDUP.radius
    # Seed ranges: the pool's scene seeds lie below 2**31, every held-out seed at or above it.
    seeds = [scene["seed"] for scene in heldout.heldout_scenes(per_class=heldout.MAX_PER_CLASS)]
    assert min(seeds) == 1 << 31 and len(set(seeds)) == len(seeds)
    last = heldout.heldout_scenes(per_class=1, seed=heldout.MAX_SETS - 1)
    assert max(s["seed"] for s in last) < 1 << 32


def test_train_demo_runs_end_to_end_and_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dataset = make_dataset(
        tmp_path / "dataset", 64, samples_per_shard=32, image_size=40, corrupt_key_index=None
    )
    out = tmp_path / "demo"
    argv = [
        "--out",
        str(out),
        "--dataset",
        str(dataset),
        "--objectives",
        "catlip",
        "--steps",
        "3",
        "--per-class",
        "2",
    ]
    assert run(argv) == 0
    results = json.loads((out / RESULTS_FILE).read_text())
    (row,) = results["runs"]
    assert row["objective"] == "catlip" and row["steps"] == 3 and row["preset"] == "tiny-catlip"
    assert Path(row["checkpoint"]).name == "step_00000003.pt" and row["train_seconds"] > 0
    zero_shot = row["zero_shot"]
    assert zero_shot["samples"] == 20 and zero_shot["chance"] == 0.1 and 0 <= zero_shot["top1"] <= 1
    assert "top1_bn_recalibrated" not in zero_shot  # a ViT tower has no BatchNorm
    assert zero_shot["label_mappings"]["ball"] == "direct"  # the fixture's vocabulary has ball.n.01
    curves = row["transfer_vs_random"]
    assert set(curves) == {"transfer_init", "random"} and all(len(c) == 6 for c in curves.values())
    environment = results["environment"]  # what the figures depend on
    assert environment["threads"] == 1 and environment["torch"] == torch.__version__
    assert environment["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(results["dataset_files"]) == {"manifest.json", "tokenizer.json", "vocabulary.json"}
    assert results["heldout"]["per_class"] == 2 and len(read_image_folder(out / "fewshot").items) == 50
    table = capsys.readouterr().out
    assert "objective" in table and "\ncatlip " in table and "Transfer Init" in table


def test_train_demo_mistakes_get_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["--out", str(tmp_path), "--dataset", str(tmp_path / "missing")]) == 2
    assert "holds no manifest.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        run(["--objectives", "siglip,clip"])
    assert exit_info.value.code == 2 and "--objectives" in capsys.readouterr().err


def test_the_training_pool_scales_the_per_query_cap_into_the_curate_command() -> None:
    from demo.run import curate_argv
    from demo.train import TRAIN_POOL_SIZE, per_query_cap

    assert per_query_cap(TRAIN_POOL_SIZE) == 800 and per_query_cap(10) == 1
    argv = curate_argv(Path("pool"), Path("dataset"), Path("blocklist.json"), 1, 0, per_query_cap(16_000))
    assert [flag for flag in argv if flag.startswith("--per_query_cap")] == ["--per_query_cap=800"]
    assert "--per_query_cap=80" in curate_argv(Path("pool"), Path("dataset"), Path("blocklist.json"), 1, 0)
