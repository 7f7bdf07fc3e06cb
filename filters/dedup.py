"""Duplicate detection: exact (sha256), near (64-bit pHash within a Hamming radius), and the alt-text count rule.

Near-duplicate search without all-pairs comparison uses multi-index hashing by the pigeonhole
principle: split the 64 hash bits into ``bands`` chunks; two hashes that differ in at most ``radius``
bits, with ``radius < bands``, differ in at most ``radius`` chunks, so they agree exactly on at least
one chunk. Grouping by ``(chunk index, chunk value)`` (``band_keys``) and checking the exact distance
inside each group (``bucket_pairs``) therefore finds every pair within the radius.

Reasons: ``exact_duplicate``, ``near_duplicate``, ``eval_duplicate`` (see ``filters.eval_blocklist``),
``image_too_many_alt_texts`` (ALIGN: an image with more than 1000 associated alt-texts).

Hash strings come from this module; a malformed one is a programming error and raises ``ValueError``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import imagehash
from PIL import Image

from filters.decision import KEEP, Verdict

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
EVAL_DUPLICATE = "eval_duplicate"
IMAGE_TOO_MANY_ALT_TEXTS = "image_too_many_alt_texts"

PHASH_BITS = 64
PHASH_HEX_CHARS = PHASH_BITS // 4


@dataclass(frozen=True)
class DedupConfig:
    """Near-duplicate settings.

    ``radius``: the largest Hamming distance between pHashes that counts as a near duplicate.
    ``bands``: chunks for multi-index search; must exceed ``radius`` (pigeonhole guarantee).
    ``max_alt_texts``: ALIGN drops images with more than 1000 associated alt-texts.

    Default radius 6 with 7 bands, measured by ``benchmarks/calibrate_phash.py`` on 25 real photos
    (12 mate-backgrounds + 13 scikit-image), 19 edits of each, hashed through ``decode_and_resize``
    at the shard size (256 px), against 139,152 unrelated pairs (the photos + 504 tiles cut from
    different regions of the large ones). pHash sets exactly 32 of 64 bits, so distances are even and
    an odd radius behaves like the even one below it. Recall by edit family at radius 4 / 6 / 8 / 10:
    JPEG q10–q30 0.95 / 0.99 / 1.00 / 1.00; downscale 0.5–0.25× 1.00 at every radius ≥ 2;
    brightness/contrast ±10–20 % and greyscale 0.98 / 0.99 / 0.99 / 1.00; 2 % crop 0.92 / 0.96 / 0.96 / 0.96;
    5 % crop 0.24 / 0.44 / 0.56 / 0.76; 1–3° rotation 0.32 / 0.36 / 0.48 / 0.60; 10 % crop ≤ 0.22
    (pHash is not crop-robust; mirrored copies are never found, distance ~32).
    False matches among unrelated pairs: 0 up to radius 8, 1 at 10, 3 at 12, 46 at 16 (closest
    unrelated pair: 10 bits). Share of unrelated pairs that share a band key (exact checks left to do
    per pair, bands = radius + 1): 0.0014 / 0.016 / 0.073 / 0.21 at radius 4 / 6 / 8 / 10, i.e.
    about 7e8 / 8e9 / 4e10 / 1e11 distance checks per million images. Radius 6 keeps re-encodes,
    rescales and lighting changes at ≥ 0.98 and 2 % crops at 0.96 for under a quarter of radius 8's
    work; radius 4 is 12× cheaper again but finds 0.95 of re-encodes, 0.92 of 2 % crops and 0.24 of 5 % crops.

    Shuffle cost: each image emits ``bands`` keys, and a chunk of ``64 / bands`` bits has
    ``2 ** (64 / bands)`` values, so more bands mean more keys per image AND larger groups (more
    exact-distance checks inside each group). ``bands = radius + 1`` is the smallest that keeps the
    guarantee and so the cheapest; run exact dedup first so identical hashes do not pile into one group.
    """

    radius: int = 6
    bands: int = 7
    max_alt_texts: int = 1000

    def __post_init__(self) -> None:
        if not 0 <= self.radius < self.bands <= PHASH_BITS:
            raise ValueError(
                f"DedupConfig: need 0 <= radius < bands <= {PHASH_BITS} (got radius={self.radius}, "
                f"bands={self.bands}); bands must exceed radius for the pigeonhole guarantee"
            )


DEFAULT_DEDUP = DedupConfig()


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of the bytes as 64 lowercase hex chars."""
    return hashlib.sha256(data).hexdigest()


def phash_hex(image: Image.Image) -> str:
    """imagehash's 64-bit DCT perceptual hash as 16 hex chars (compute it on the decoded RGB image)."""
    return str(imagehash.phash(image))


def _phash_int(phash: str) -> int:
    if not isinstance(phash, str) or len(phash) != PHASH_HEX_CHARS:
        raise ValueError(f"a pHash is {PHASH_HEX_CHARS} hex chars, got {phash!r}")
    try:
        return int(phash, 16)
    except ValueError:
        raise ValueError(f"a pHash is {PHASH_HEX_CHARS} hex chars, got {phash!r}") from None


def hamming(a_hex: str, b_hex: str) -> int:
    """Number of differing bits between two 64-bit pHashes."""
    return (_phash_int(a_hex) ^ _phash_int(b_hex)).bit_count()


def chunk_widths(bands: int) -> list[int]:
    """Bit widths of the ``bands`` chunks of a 64-bit hash; widths differ by at most one."""
    if not 1 <= bands <= PHASH_BITS:
        raise ValueError(f"bands must be in 1..{PHASH_BITS}, got {bands}")
    base, extra = divmod(PHASH_BITS, bands)
    return [base + 1 if index < extra else base for index in range(bands)]


def band_keys(phash: str, bands: int) -> list[tuple[int, str]]:
    """``(chunk index, chunk value as hex)`` for each chunk, most significant bits first."""
    value = _phash_int(phash)
    keys = []
    shift = PHASH_BITS
    for index, width in enumerate(chunk_widths(bands)):
        shift -= width
        chunk = (value >> shift) & ((1 << width) - 1)
        keys.append((index, format(chunk, f"0{(width + 3) // 4}x")))
    return keys


K = TypeVar("K", bound=Hashable)


def _ordered(a: K, b: K) -> tuple[K, K]:
    return (a, b) if a <= b else (b, a)  # type: ignore[operator]


def bucket_pairs(members: Sequence[tuple[K, str]], radius: int) -> set[tuple[K, K]]:
    """Pairs ``(id_a, id_b)``, ``id_a < id_b``, of members within ``radius``: the exact check inside one group."""
    values = [(key, _phash_int(phash)) for key, phash in members]
    return {
        _ordered(key_a, key_b)
        for (key_a, a), (key_b, b) in itertools.combinations(values, 2)
        if key_a != key_b and (a ^ b).bit_count() <= radius
    }


def near_duplicate_pairs(items: Iterable[tuple[K, str]], radius: int, bands: int) -> set[tuple[K, K]]:
    """All pairs within ``radius`` via band groups: the in-memory reference for the Beam stage.

    Ids must be hashable and mutually orderable (pairs are returned as ``(smaller, larger)``).
    """
    if not 0 <= radius < bands:
        raise ValueError(
            f"need 0 <= radius < bands for the pigeonhole guarantee (radius={radius}, bands={bands})"
        )
    groups: dict[tuple[int, str], list[tuple[K, str]]] = defaultdict(list)
    for key, phash in items:
        for band_key in band_keys(phash, bands):
            groups[band_key].append((key, phash))
    pairs: set[tuple[K, K]] = set()
    for members in groups.values():
        if len(members) > 1:
            pairs |= bucket_pairs(members, radius)
    return pairs


def duplicate_groups(pairs: Iterable[tuple[K, K]]) -> list[set[K]]:
    """Connected components of the pair graph (union-find), so transitive near-duplicates form one group.

    Groups are returned sorted by their smallest member.
    """
    parent: dict[K, K] = {}

    def find(node: K) -> K:
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for a, b in pairs:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            small, large = _ordered(root_a, root_b)
            parent[large] = small
    groups: dict[K, set[K]] = defaultdict(set)
    for node in parent:
        groups[find(node)].add(node)
    return sorted(groups.values(), key=min)  # type: ignore[arg-type]


class HasResolution(Protocol):
    key: str
    original_width: int
    original_height: int


@dataclass(frozen=True)
class DedupCandidate:
    """What the survivor choice needs about one image."""

    key: str
    original_width: int
    original_height: int


M = TypeVar("M", bound=HasResolution)


def choose_survivor(members: Iterable[M]) -> M:
    """The member a duplicate group keeps: the largest original pixel count, then the smallest key.

    Depends only on the members, never on their order, so every worker and retry picks the same one.
    """
    survivor = min(members, key=lambda m: (-(m.original_width * m.original_height), m.key), default=None)
    if survivor is None:
        raise ValueError("choose_survivor needs at least one member")
    return survivor


def group_verdicts(members: Iterable[M], reason: str) -> dict[str, Verdict]:
    """KEEP for the group's survivor, ``reason`` (e.g. ``exact_duplicate``) for every other member."""
    members = list(members)
    survivor = choose_survivor(members)
    return {member.key: KEEP if member.key == survivor.key else reason for member in members}


def check_alt_text_count(n: int, max_alt_texts: int = DEFAULT_DEDUP.max_alt_texts) -> Verdict:
    """ALIGN: drop an image associated with more than ``max_alt_texts`` alt-texts (1000 keeps)."""
    return IMAGE_TOO_MANY_ALT_TEXTS if n > max_alt_texts else KEEP
