"""Dedup: hashes, the band (multi-index) search against brute force, grouping, survivors, eval blocklist."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import imagehash
import pytest
import webdataset as wds
from PIL import Image, ImageEnhance

import filters.eval_blocklist as eval_blocklist_module
from filters.dedup import (
    DEFAULT_DEDUP,
    EVAL_DUPLICATE,
    EXACT_DUPLICATE,
    IMAGE_TOO_MANY_ALT_TEXTS,
    NEAR_DUPLICATE,
    DedupCandidate,
    DedupConfig,
    band_keys,
    bucket_pairs,
    check_alt_text_count,
    choose_survivor,
    chunk_widths,
    duplicate_groups,
    group_verdicts,
    hamming,
    near_duplicate_pairs,
    phash_hex,
    sha256_hex,
)
from filters.eval_blocklist import EvalBlocklist, EvalEntry, EvalSetError, build_eval_blocklist
from filters.image import ProcessedImage, process_image
from tests import image_fixtures as fx


def _random_hash(rng: random.Random) -> str:
    return format(rng.getrandbits(64), "016x")


def _flip(phash: str, bits: list[int]) -> str:
    value = int(phash, 16)
    for bit in bits:
        value ^= 1 << bit
    return format(value, "016x")


def _shard_phash(data: bytes) -> str:
    processed = process_image(data)
    assert isinstance(processed, ProcessedImage)
    return phash_hex(processed.image)


# --- hashes ---------------------------------------------------------------------------------------------


def test_sha256_hex_matches_the_standard_vector() -> None:
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_phash_is_16_hex_chars_stable_under_reencode_and_far_for_other_photos() -> None:
    coffee = fx.skimage_photo("coffee")
    digest = phash_hex(coffee)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert digest == str(imagehash.phash(coffee))
    assert hamming(_shard_phash(fx.photo_jpeg(quality=90)), _shard_phash(fx.photo_jpeg(quality=25))) <= 4
    assert hamming(digest, phash_hex(fx.skimage_photo("astronaut"))) > 16


def test_hamming_counts_differing_bits() -> None:
    assert hamming("0000000000000000", "ffffffffffffffff") == 64
    assert hamming("00000000000000ff", "0000000000000000") == 8
    assert hamming("a5a5a5a5a5a5a5a5", "a5a5a5a5a5a5a5a5") == 0
    for bad in ("123", "zzzzzzzzzzzzzzzz", None):
        with pytest.raises(ValueError):
            hamming(bad, "0000000000000000")  # type: ignore[arg-type]


# --- band keys and the pigeonhole guarantee --------------------------------------------------------------


@pytest.mark.parametrize("bands", [1, 5, 7, 9, 11, 16, 64])
def test_band_keys_cover_all_64_bits_once(bands: int) -> None:
    widths = chunk_widths(bands)
    assert sum(widths) == 64 and max(widths) - min(widths) <= 1
    rng = random.Random(bands)
    for _ in range(50):
        digest = _random_hash(rng)
        keys = band_keys(digest, bands)
        assert [index for index, _ in keys] == list(range(bands))
        bits = "".join(format(int(value, 16), f"0{width}b") for (_, value), width in zip(keys, widths))
        assert int(bits, 2) == int(digest, 16)


@pytest.mark.parametrize(("radius", "bands"), [(0, 1), (3, 4), (4, 5), (6, 7), (8, 9), (10, 11), (10, 16)])
def test_hashes_within_radius_share_a_band_key(radius: int, bands: int) -> None:
    rng = random.Random(radius * 100 + bands)
    for _ in range(400):
        base = _random_hash(rng)
        other = _flip(base, rng.sample(range(64), rng.randint(0, radius)))
        assert set(band_keys(base, bands)) & set(band_keys(other, bands))


def test_the_guarantee_needs_more_bands_than_the_radius() -> None:
    # One flipped bit per chunk: distance == bands, and no chunk agrees.
    bands = 7
    base = "0123456789abcdef"
    starts = list(itertools.accumulate([0, *chunk_widths(bands)[:-1]]))
    other = _flip(base, [63 - start for start in starts])
    assert hamming(base, other) == bands
    assert not set(band_keys(base, bands)) & set(band_keys(other, bands))


def _planted_items(rng: random.Random, clusters: int = 60) -> list[tuple[str, str]]:
    items = []
    for cluster in range(clusters):
        base = _random_hash(rng)
        items.append((f"c{cluster:03d}-0", base))
        for variant in range(1, rng.randint(1, 5)):
            items.append(
                (f"c{cluster:03d}-{variant}", _flip(base, rng.sample(range(64), rng.randint(0, 12))))
            )
    return items


@pytest.mark.parametrize(("radius", "bands"), [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)])
def test_band_search_equals_all_pairs_brute_force(radius: int, bands: int) -> None:
    items = _planted_items(random.Random(radius))
    brute = {
        tuple(sorted((a, b)))
        for (a, ha), (b, hb) in itertools.combinations(items, 2)
        if hamming(ha, hb) <= radius
    }
    assert brute, "the planted clusters should give some pairs"
    assert near_duplicate_pairs(items, radius, bands) == brute


def test_band_search_rejects_too_few_bands() -> None:
    with pytest.raises(ValueError):
        near_duplicate_pairs([("a", "0" * 16)], radius=7, bands=7)
    with pytest.raises(ValueError):
        DedupConfig(radius=8, bands=8)
    assert DEFAULT_DEDUP.radius < DEFAULT_DEDUP.bands


def test_bucket_pairs_skips_self_pairs_and_orders_ids() -> None:
    members = [("b", "0000000000000000"), ("a", "0000000000000001"), ("b", "0000000000000000")]
    assert bucket_pairs(members, 1) == {("a", "b")}


def test_near_duplicates_among_real_photos() -> None:
    items = []
    for path in fx.mate_photo_paths()[:6]:
        data = path.read_bytes()
        image = Image.open(path).convert("RGB")
        half = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
        brighter = ImageEnhance.Brightness(image).enhance(1.1)
        items.append((path.stem, _shard_phash(data)))
        items.append((path.stem + "~q30_half", _shard_phash(fx.encode(half, "JPEG", quality=30))))
        items.append((path.stem + "~bright", _shard_phash(fx.encode(brighter, "JPEG", quality=90))))
    pairs = near_duplicate_pairs(items, DEFAULT_DEDUP.radius, DEFAULT_DEDUP.bands)
    groups = duplicate_groups(pairs)
    expected = [{p.stem, p.stem + "~q30_half", p.stem + "~bright"} for p in fx.mate_photo_paths()[:6]]
    assert sorted(groups, key=min) == sorted(expected, key=min)


# --- grouping, survivors, verdicts -----------------------------------------------------------------------


def test_duplicate_groups_are_transitive_and_deterministic() -> None:
    pairs = [("c", "d"), ("a", "b"), ("b", "c"), ("x", "y")]
    assert duplicate_groups(pairs) == [{"a", "b", "c", "d"}, {"x", "y"}]
    assert duplicate_groups(reversed(pairs)) == [{"a", "b", "c", "d"}, {"x", "y"}]
    assert duplicate_groups([]) == []


def test_survivor_is_the_largest_original_then_the_smallest_key_whatever_the_order() -> None:
    members = [
        DedupCandidate("k3", 800, 600),
        DedupCandidate("k1", 640, 480),
        DedupCandidate("k9", 600, 800),
        DedupCandidate("k2", 400, 300),
    ]
    for order in itertools.permutations(members):
        assert choose_survivor(order).key == "k3"
    with pytest.raises(ValueError):
        choose_survivor([])


def test_group_verdicts_keep_one_and_name_the_rest() -> None:
    members = [DedupCandidate("a", 300, 300), DedupCandidate("b", 900, 600), DedupCandidate("c", 300, 300)]
    assert group_verdicts(members, EXACT_DUPLICATE) == {"a": EXACT_DUPLICATE, "b": None, "c": EXACT_DUPLICATE}
    assert group_verdicts(members[:1], NEAR_DUPLICATE) == {"a": None}


def test_alt_text_count_rule() -> None:
    assert check_alt_text_count(1000) is None
    assert check_alt_text_count(1001) == IMAGE_TOO_MANY_ALT_TEXTS
    assert check_alt_text_count(11, max_alt_texts=10) == IMAGE_TOO_MANY_ALT_TEXTS


# --- eval blocklist --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder (with a subfolder) of real photos plus a WebDataset tar shard and one broken file."""
    root = tmp_path_factory.mktemp("eval")
    (root / "sub").mkdir()
    (root / "coffee.jpg").write_bytes(fx.photo_jpeg(quality=90))
    (root / "sub" / "astronaut.png").write_bytes(fx.encode(fx.skimage_photo("astronaut"), "PNG"))
    (root / "sub" / "broken.jpg").write_bytes(fx.HTML_BYTES)
    (root / "notes.txt").write_text("not an image")
    with wds.TarWriter(str(root / "shard-000000.tar")) as sink:
        for name in ("chelsea", "rocket"):
            sink.write(
                {"__key__": name, "jpg": fx.encode(fx.skimage_photo(name), "JPEG", quality=90), "txt": name}
            )
    return root


def test_blocklist_from_folder_and_tar_flags_exact_and_near_copies(eval_set: Path, tmp_path: Path) -> None:
    blocklist = build_eval_blocklist([eval_set])
    assert len(blocklist) == 4
    assert blocklist.skipped == {"image_undecodable": 1}
    assert any(entry.source.endswith(".tar::chelsea.jpg") for entry in blocklist.entries)

    exact = fx.photo_jpeg(quality=90)
    assert blocklist.check(sha256_hex(exact), _shard_phash(exact)) == EVAL_DUPLICATE
    near = fx.encode(fx.skimage_photo("chelsea").resize((400, 300)), "JPEG", quality=40)
    assert blocklist.check(sha256_hex(near), _shard_phash(near)) == EVAL_DUPLICATE
    found = blocklist.find(None, _shard_phash(near))
    assert found is not None and found.source.endswith("chelsea.jpg")
    other = fx.mate_photo_bytes("Garden.jpg")
    assert blocklist.check(sha256_hex(other), _shard_phash(other)) is None
    assert blocklist.check(None, None) is None
    assert blocklist.check("nonsense", "not-a-hash") is None

    path = tmp_path / "blocklist.json"
    blocklist.save(path)
    loaded = EvalBlocklist.load(path)
    assert loaded == blocklist
    assert loaded.check(sha256_hex(near), _shard_phash(near)) == EVAL_DUPLICATE
    assert json.loads(path.read_text())["format_version"] == 1


def test_blocklist_check_uses_the_band_index_not_a_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    entries = [EvalEntry(f"e{i}", f"{i:064x}", _random_hash(rng)) for i in range(3000)]
    blocklist = EvalBlocklist(entries, bands=DEFAULT_DEDUP.bands)
    calls = []
    real_hamming = eval_blocklist_module.hamming
    monkeypatch.setattr(eval_blocklist_module, "hamming", lambda a, b: calls.append(1) or real_hamming(a, b))
    target = entries[1234]
    assert blocklist.find(None, _flip(target.phash, [0, 17, 40, 63])) == target
    assert blocklist.check(None, _random_hash(rng)) is None
    assert 0 < len(calls) < 300


def test_blocklist_user_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(EvalSetError, match="does not exist"):
        build_eval_blocklist([tmp_path / "missing"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(EvalSetError, match="not a valid eval blocklist"):
        EvalBlocklist.load(bad)
    with pytest.raises(EvalSetError, match="not found"):
        EvalBlocklist.load(tmp_path / "none.json")
    broken_tar = tmp_path / "broken.tar"
    broken_tar.write_bytes(b"x" * 1000)
    with pytest.raises(EvalSetError, match="cannot read eval shard"):
        build_eval_blocklist([broken_tar])
    with pytest.raises(ValueError, match="bands"):
        EvalBlocklist([], bands=5).check(None, "0" * 16, radius=5)
