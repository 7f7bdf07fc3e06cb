"""The built-in demo: scenes, the generated pool, its server, and the whole demo end to end."""

from __future__ import annotations

import glob
import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nltk.corpus import wordnet
from PIL import Image

from demo import captions, photos, pool
from demo.run import describe_dataset, run
from demo.scenes import BACKGROUNDS, COLOURS, KINDS, render_scene
from testing.web_server import DemoServer

SMALL = pool.MIN_SIZE


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_object_noun_has_the_drawn_object_as_its_first_wordnet_sense(kind: str) -> None:
    assert wordnet.synsets(kind, pos=wordnet.NOUN)[0].name() == KINDS[kind]


def test_scenes_are_deterministic_and_vary_with_the_seed() -> None:
    first = render_scene("car", "red", "grass", seed=7, size=(300, 260))
    assert first.size == (300, 260) and first.mode == "RGB"
    assert first.tobytes() == render_scene("car", "red", "grass", seed=7, size=(300, 260)).tobytes()
    assert first.tobytes() != render_scene("car", "red", "grass", seed=8, size=(300, 260)).tobytes()
    with pytest.raises(ValueError, match="unknown scene"):
        render_scene("kite", "red", "sky", seed=0)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_object_colour_is_plain_in_the_pixels(kind: str) -> None:
    # On a plain background every colour named in the caption must cover a visible share of the image.
    for colour, rgb in COLOURS.items():
        pixels = np.asarray(render_scene(kind, colour, "plain", seed=3, size=(256, 256)), dtype=np.int32)
        close = np.abs(pixels - np.array(rgb)).sum(axis=2) < 90
        assert close.mean() > 0.02, (kind, colour, close.mean())


def test_every_background_renders() -> None:
    images = [np.asarray(render_scene("ball", "purple", bg, seed=1, size=(256, 256))) for bg in BACKGROUNDS]
    assert len({image.tobytes() for image in images}) == len(BACKGROUNDS)


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pool.generate_pool(tmp_path_factory.mktemp("pool"), n=SMALL, seed=0)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


def test_same_seed_gives_the_same_pool_byte_for_byte(small_pool: Path, tmp_path: Path) -> None:
    again = pool.generate_pool(tmp_path / "again", n=SMALL, seed=0)
    assert _files(small_pool) == _files(again)
    other = pool.generate_pool(tmp_path / "other", n=SMALL, seed=1)
    assert (other / pool.TABLE_FILE).read_bytes() != (small_pool / pool.TABLE_FILE).read_bytes()


def _rows(root: Path) -> list[dict[str, str]]:
    return pq.read_table(root / pool.TABLE_FILE).to_pylist()


def _image(root: Path, row: dict[str, str]) -> bytes:
    name = row["url"].split("/images/", 1)[1].split("?", 1)[0]
    return (root / pool.IMAGES_DIR / name).read_bytes()


def test_pool_table_has_exactly_n_rows_in_both_formats(small_pool: Path) -> None:
    rows = _rows(small_pool)
    assert len(rows) == SMALL
    assert pq.read_schema(small_pool / pool.TABLE_FILE).names == ["url", "caption", "source", "truth"]
    lines = (small_pool / pool.JSONL_FILE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows
    summary = json.loads((small_pool / pool.SUMMARY_FILE).read_text(encoding="utf-8"))
    assert sum(summary["sources"].values()) == SMALL


def test_pool_contains_every_kind_of_junk(small_pool: Path) -> None:
    rows = _rows(small_pool)
    sources = {row["source"] for row in rows}
    expected = {
        "scene", "photo", "shared_alt_text", "exact_duplicate", "near_duplicate", "many_alt_texts",
        "eval_overlap", "too_small", "too_wide", "truncated_jpeg", "html_file", "decompression_bomb",
        "zero_bytes", "dead_url", "redirect_ok",
        *(f"junk_text/{kind}" for kind in captions.JUNK_KINDS),
        *(source for _, source, _ in pool.ENDPOINT_ROWS),
    }  # fmt: skip
    assert expected <= sources
    by_source: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)

    shared = by_source["shared_alt_text"]
    assert len(shared) > 10 and {row["caption"] for row in shared} == {captions.SHARED_ALT_TEXT}
    assert len({_image(small_pool, row) for row in shared}) == len(shared)  # different images, one alt-text
    many = by_source["many_alt_texts"]
    assert len({_image(small_pool, row) for row in many}) == 1 and len({row["url"] for row in many}) == len(
        many
    )

    all_images = [_image(small_pool, row) for row in by_source["scene"] + by_source["eval_overlap"]]
    for row in by_source["exact_duplicate"]:
        assert all_images.count(_image(small_pool, row)) >= 1
    for row in by_source["too_small"]:
        assert min(Image.open(io.BytesIO(_image(small_pool, row))).size) == 150
    for row in by_source["too_wide"]:
        width, height = Image.open(io.BytesIO(_image(small_pool, row))).size
        assert max(width, height) / min(width, height) > 3
    assert all(_image(small_pool, row) == b"" for row in by_source["zero_bytes"])
    assert all(_image(small_pool, row).startswith(b"<!DOCTYPE html>") for row in by_source["html_file"])
    for row in by_source["truncated_jpeg"]:
        with pytest.raises(OSError):
            Image.open(io.BytesIO(_image(small_pool, row))).load()
    for row in by_source["decompression_bomb"]:
        data = _image(small_pool, row)
        assert len(data) < 1000
        assert (
            int.from_bytes(data[16:20], "big") * int.from_bytes(data[20:24], "big") > Image.MAX_IMAGE_PIXELS
        )
    for row in by_source["dead_url"]:
        assert not (small_pool / pool.IMAGES_DIR / row["url"].rsplit("/", 1)[1]).exists()

    junk = {row["source"]: row["caption"] for row in rows if row["source"].startswith("junk_text/")}
    assert len(junk["junk_text/too_long"].split()) > 20 and len(junk["junk_text/too_short"].split()) < 3
    for row in by_source["scene"]:
        colour, kind = row["truth"].split()
        assert kind in KINDS and colour in COLOURS


def test_eval_images_also_occur_in_the_pool(small_pool: Path) -> None:
    eval_files = sorted((small_pool / pool.EVAL_DIR).iterdir())
    overlap = [row for row in _rows(small_pool) if row["source"] == "eval_overlap"]
    assert len(eval_files) == len(overlap) == 4
    pool_images = {_image(small_pool, row) for row in overlap}
    exact = [path for path in eval_files if path.read_bytes() in pool_images]
    assert len(exact) == 3  # and one re-encoded copy, for the near-duplicate side of the blocklist


def test_allowlist_names_objects_colours_bigrams_and_distractors(small_pool: Path) -> None:
    queries = json.loads((small_pool / pool.ALLOWLIST_FILE).read_text(encoding="utf-8"))
    assert set(KINDS) | set(COLOURS) <= set(queries)
    assert "red ball" in queries and "giraffe" in queries
    assert queries == sorted(set(queries))


def test_server_serves_the_pool_at_the_urls_in_its_table(tmp_path: Path) -> None:
    with DemoServer(tmp_path / pool.IMAGES_DIR) as server:
        root = pool.generate_pool(tmp_path, n=SMALL, seed=0, base_url=server.base_url)
        rows = _rows(root)
        scene = next(row for row in rows if row["source"] == "scene")
        with urllib.request.urlopen(scene["url"], timeout=5) as response:
            assert response.read() == _image(root, scene)
            assert response.headers["Content-Type"] in ("image/jpeg", "image/png")
        dead = next(row for row in rows if row["source"] == "dead_url")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(dead["url"], timeout=5)
        assert missing.value.code == 404
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(server.url("/images/..%2Fpool.json"), timeout=5)  # no escaping the folder
        assert server.hits(scene["url"].removeprefix(server.base_url)) == 1


def test_demo_refuses_a_busy_port_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with DemoServer() as busy:
        port = busy.base_url.rsplit(":", 1)[1]
        assert run(["--out", str(tmp_path), "--size", "150", "--port", port]) == 2
    error = capsys.readouterr().err.strip()
    assert "pass --port 0" in error and "\n" not in error


def test_demo_refuses_to_build_a_different_pool_without_its_photos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool depends on what is installed: a missing photo source is a one-line error, not fewer photos."""
    monkeypatch.setattr(photos, "NATURE_DIR", tmp_path / "no-such-dir")
    assert run(["--out", str(tmp_path / "out"), "--size", "150", "--port", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert "mate-backgrounds" in error and "\n" not in error
    assert not (tmp_path / "out" / "pool" / pool.TABLE_FILE).exists()


@pytest.mark.slow
def test_demo_end_to_end_through_real_http_and_the_whole_curation_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--out", str(tmp_path), "--size", "150", "--workers", "1", "--port", "0"]) == 0
    printed = capsys.readouterr().out
    assert "[demo 5/5] done" in printed and "funnel:   read 150" in printed

    dataset = tmp_path / "dataset"
    stats = json.loads((dataset / "stats.json").read_text(encoding="utf-8"))
    assert stats["read"] == 150 and stats["conserved"]
    assert 40 <= stats["kept"] <= 120
    assert (dataset / "report.html").is_file() and (dataset / "manifest.json").is_file()
    assert describe_dataset(dataset)[0].startswith("  shards:")

    sources = {row["url"]: row["source"] for row in _rows(tmp_path / "pool")}
    rejects = pa.concat_tables(
        [pq.read_table(path) for path in glob.glob(str(dataset / "rejects" / "*.parquet"))]
    )
    fate = {(sources.get(row["url"], "?"), row["stage"], row["reason"]) for row in rejects.to_pylist()}
    for expected in [
        ("dead_url", "fetch", "http_error"),
        ("endpoint/dead", "fetch", "http_error"),
        ("endpoint/huge", "fetch", "response_too_large"),
        ("endpoint/huge_stream", "fetch", "response_too_large"),
        ("endpoint/redirect_loop", "fetch", "too_many_redirects"),
        ("endpoint/slow", "fetch", "fetch_timeout"),
        ("endpoint/robots_noai", "fetch", "robots_disallowed"),
        ("endpoint/reset", "fetch", "fetch_failed"),
        ("endpoint/connection_refused", "fetch", "fetch_failed"),
        ("endpoint/redirect_to_metadata", "fetch", "url_private_address"),  # the guard stays on in the demo
        ("bad_url/unsupported_scheme", "fetch", "url_unsupported_scheme"),
        ("bad_url/file_url", "fetch", "file_url_not_allowed"),
    ]:
        assert expected in fate, expected
    stages_by_source = {(source, stage) for source, stage, _ in fate}
    for source, stage in [
        ("junk_text/file_name", "text"),
        ("shared_alt_text", "shared_alt_text"),
        ("eval_overlap", "dedup"),
        ("many_alt_texts", "dedup"),
        ("zero_bytes", "image"),
        ("truncated_jpeg", "image"),
        ("decompression_bomb", "image"),
        ("too_wide", "image"),
        ("endpoint/html", "image"),  # fetched fine, then not an image
    ]:
        assert (source, stage) in stages_by_source, (source, stage)
    fetch_rejected = {row["url"] for row in rejects.to_pylist() if row["stage"] == "fetch"}
    flaky = {url for url, source in sources.items() if source == "endpoint/flaky"}
    assert flaky and not flaky & fetch_rejected  # 503 once, then fetched on the retry
