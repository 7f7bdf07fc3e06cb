"""Dedup: hashes, the table search against brute force, the in-memory decision, survivors, eval blocklist."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import imagehash
import numpy as np
import pytest
import webdataset as wds
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance

from filters import near_search
from filters.dedup import (
    DEFAULT_DEDUP,
    EVAL_DUPLICATE,
    EXACT_DUPLICATE,
    IMAGE_TOO_MANY_ALT_TEXTS,
    NEAR_DUPLICATE,
    DedupCandidate,
    DedupConfig,
    HashedImage,
    check_alt_text_count,
    choose_survivor,
    group_verdicts,
    hamming,
    phash_hex,
    phash_value,
    reference_losers,
    sha256_hex,
)
from filters.eval_blocklist import EvalBlocklist, EvalEntry, EvalSetError, build_eval_blocklist
from filters.image import ProcessedImage, process_image
from filters.near_search import (
    NO_WINNER,
    SearchStats,
    block_masks,
    brute_force_losers,
    make_plan,
    near_losers,
)
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
    for bad in ("123", "zzzzzzzzzzzzzzzz", None, "-123456789abcdef", "0x23456789abcdef", "1_23456789abcdef"):
        with pytest.raises(ValueError):
            hamming(bad, "0000000000000000")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_phash_value_takes_exactly_sixteen_hex_digits(text: str) -> None:
    if len(text) == 16 and all(c in "0123456789abcdefABCDEF" for c in text):
        assert 0 <= phash_value(text) < 2**64
    else:
        with pytest.raises(ValueError):
            phash_value(text)


# --- the table search against brute force ---------------------------------------------------------------


@pytest.mark.parametrize(("radius", "blocks"), [(0, 1), (3, 4), (4, 6), (6, 7), (6, 8), (8, 10), (10, 12)])
def test_hashes_within_radius_share_a_table_key(radius: int, blocks: int) -> None:
    plan = make_plan(radius, blocks)
    assert plan.tables == math.comb(blocks, blocks - radius)
    rng = random.Random(radius * 100 + blocks)
    for _ in range(300):
        base = rng.getrandbits(64)
        other = int(_flip(format(base, "016x"), rng.sample(range(64), rng.randint(0, radius))), 16)
        assert any(base & mask == other & mask for mask in plan.masks)


def test_the_guarantee_needs_more_blocks_than_the_radius() -> None:
    with pytest.raises(ValueError, match="radius < blocks"):
        make_plan(7, 7)
    # one flipped bit per block: distance == blocks, and no table agrees
    plan = make_plan(6, 7)
    flips = [max(i for i in range(64) if block >> i & 1) for block in block_masks(list(range(63, -1, -1)), 7)]
    base = 0x0123456789ABCDEF
    other = int(_flip(format(base, "016x"), flips), 16)
    assert (base ^ other).bit_count() == 7
    assert not any(base & mask == other & mask for mask in plan.masks)


def _planted(rng: random.Random, clusters: int = 200, spread: int = 12) -> np.ndarray:
    values = []
    for _ in range(clusters):
        base = rng.getrandbits(64)
        values.append(base)
        for _ in range(rng.randint(0, 4)):
            values.append(int(_flip(format(base, "016x"), rng.sample(range(64), rng.randint(1, spread))), 16))
    return np.array(sorted(set(values)), dtype=np.uint64)


def _check_against_brute_force(hashes: np.ndarray, radius: int, seed: int) -> SearchStats:
    order = np.random.default_rng(seed).permutation(len(hashes)).astype(np.int64)
    stats = SearchStats()
    found = near_losers(hashes, order, radius, stats=stats)
    brute = brute_force_losers(hashes, order, radius)
    assert np.array_equal(found != NO_WINNER, brute != NO_WINNER)
    by_order = {int(o): int(h) for o, h in zip(order, hashes, strict=True)}
    for index in np.flatnonzero(found != NO_WINNER):  # the named winner is better and within the radius
        assert found[index] < order[index]
        assert (int(hashes[index]) ^ by_order[int(found[index])]).bit_count() <= radius
    return stats


@pytest.mark.parametrize("radius", [0, 2, 4, 6, 8, 10])
def test_table_search_equals_brute_force(radius: int) -> None:
    hashes = _planted(random.Random(radius))
    assert (brute_force_losers(hashes, np.arange(len(hashes)), radius) != NO_WINNER).any() or radius == 0
    _check_against_brute_force(hashes, radius, seed=radius)


@pytest.mark.parametrize("radius", [4, 6])
def test_a_dense_cluster_is_exact_and_not_all_pairs(radius: int) -> None:
    # 3000 distinct hashes within 4 bits of one centre (a viral image's edits): every run of equal keys is huge
    rng = random.Random(radius)
    centre = format(rng.getrandbits(64), "016x")
    cluster = {int(_flip(centre, rng.sample(range(64), rng.randint(1, 4))), 16) for _ in range(3000)}
    spread = {rng.getrandbits(64) for _ in range(5000)}
    hashes = np.array(sorted(cluster | spread), dtype=np.uint64)
    stats = _check_against_brute_force(hashes, radius, seed=1)
    assert stats.checks < len(hashes) ** 2 / 4  # well under all pairs (n² / 2)


@pytest.mark.parametrize(("chunk", "radix_limit"), [(256, 1 << 16), (256, 0), (1 << 20, 0)])
def test_chunked_tables_and_both_sorts_equal_brute_force(monkeypatch, chunk: int, radix_limit: int) -> None:
    # A large set is cut into chunks per lead block and sorted by a 16-bit or a 32-bit key digest; small
    # limits run every path on a few thousand hashes, planted near copies and a dense cluster included.
    monkeypatch.setattr(near_search, "CHUNK", chunk)
    monkeypatch.setattr(near_search, "RADIX_LIMIT", radix_limit)
    rng = random.Random(chunk + radix_limit)
    centre = format(rng.getrandbits(64), "016x")
    cluster = {int(_flip(centre, rng.sample(range(64), rng.randint(1, 4))), 16) for _ in range(600)}
    hashes = np.array(sorted(set(_planted(rng, clusters=1500).tolist()) | cluster), dtype=np.uint64)
    _check_against_brute_force(hashes, 6, seed=3)


def test_plan_leads_group_every_table_by_its_first_block() -> None:
    plan = make_plan(6, 9)
    grouped = plan.by_lead()
    assert sum(len(masks) for _, masks in grouped) == plan.tables == 84
    assert [len(masks) for _, masks in grouped] == [28, 21, 15, 10, 6, 3, 1]
    assert all(lead & mask == lead for lead, masks in grouped for mask in masks)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 7), st.lists(st.integers(0, 63), max_size=10)), max_size=120),
    st.integers(0, 10),
    st.integers(0, 2**32),
)
def test_table_search_equals_brute_force_on_any_hashes(centres, copies, radius, seed) -> None:
    values = set(centres)
    for centre, bits in copies:
        value = centres[centre % len(centres)]
        for bit in bits:
            value ^= 1 << bit
        values.add(value)
    _check_against_brute_force(np.array(sorted(values), dtype=np.uint64), radius, seed)


def test_a_group_search_with_fixed_bits_equals_the_whole_search() -> None:
    hashes = _planted(random.Random(5), clusters=400)
    order = np.arange(len(hashes), dtype=np.int64)
    mask = make_plan(6, 8).masks[3]
    key = int(hashes[0]) & mask
    group = np.flatnonzero(hashes & np.uint64(mask) == np.uint64(key))
    inside = near_losers(hashes[group], order[group], 6, fixed_mask=mask)
    assert np.array_equal(
        inside != NO_WINNER, brute_force_losers(hashes[group], order[group], 6) != NO_WINNER
    )


def test_reference_losers_exact_equal_and_near() -> None:
    images = [
        HashedImage("a", "s1", "0000000000000000", 300, 300),
        HashedImage("b", "s1", "0000000000000000", 200, 200),  # byte copy of a, smaller
        HashedImage("c", "s2", "0000000000000000", 300, 300),  # another file, equal pHash; key after a
        HashedImage("d", "s3", "000000000000000f", 400, 400),  # 4 bits from a, larger: d wins over a
        HashedImage("e", "s4", "ffffffffffffffff", 10, 10),
    ]
    assert reference_losers(images, 4) == {"b": EXACT_DUPLICATE, "c": NEAR_DUPLICATE, "a": NEAR_DUPLICATE}
    assert reference_losers(images, 3) == {"b": EXACT_DUPLICATE, "c": NEAR_DUPLICATE}


def test_dedup_config_bounds_radius_and_group() -> None:
    with pytest.raises(ValueError, match="radius"):
        DedupConfig(radius=40)
    with pytest.raises(ValueError, match="max_group"):
        DedupConfig(max_group=1)


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
    images = [HashedImage(key, key, phash, 100 if "half" in key else 200, 200) for key, phash in items]
    losers = reference_losers(images, DEFAULT_DEDUP.radius)
    expected = {p.stem + suffix for p in fx.mate_photo_paths()[:6] for suffix in ("~q30_half", "~bright")}
    assert losers == dict.fromkeys(expected, NEAR_DUPLICATE)


# --- grouping, survivors, verdicts -----------------------------------------------------------------------


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


def test_blocklist_check_uses_the_table_index_not_a_scan() -> None:
    rng = random.Random(3)
    entries = [EvalEntry(f"e{i}", f"{i:064x}", _random_hash(rng)) for i in range(3000)]
    blocklist = EvalBlocklist(entries, radius=DEFAULT_DEDUP.radius)
    target = entries[1234]
    near = _flip(target.phash, [0, 17, 40, 63])
    assert blocklist.find(None, near) == target
    assert 0 < blocklist.candidate_count(near) < 300
    other = _random_hash(rng)
    assert blocklist.check(None, other) is None
    assert blocklist.candidate_count(other) < 300
    assert blocklist.find(None, _flip(target.phash, list(range(7)))) != target  # 7 bits: beyond radius 6


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
    with pytest.raises(ValueError, match="indexed for"):
        EvalBlocklist([], radius=4).check(None, "0" * 16, radius=5)
    signed = tmp_path / "signed.json"  # a sign passes int(s, 16) but is no pHash
    entry = {"source": "e", "sha256": "0" * 64, "phash": "-123456789abcdef"}
    signed.write_text(json.dumps({"format_version": 1, "output_side": 256, "images": [entry]}))
    with pytest.raises(EvalSetError, match="not a valid eval blocklist"):
        EvalBlocklist.load(signed)
    blocklist = EvalBlocklist([EvalEntry("e", "0" * 64, "0123456789abcdef")])
    assert blocklist.find(None, "-123456789abcdef") is None and blocklist.find(None, "0123456789abcdee")
