"""Duplicate detection: exact (sha256), near (64-bit pHash within a Hamming radius), and the alt-text count rule.

The near-duplicate search itself is ``filters.near_search`` (block-combination tables, linear work);
``reference_losers`` here is the whole dedup decision in memory: the reference the Beam stage
(``pipelines/dedup_stages.py``) is tested against.

Reasons: ``exact_duplicate``, ``near_duplicate``, ``eval_duplicate`` (see ``filters.eval_blocklist``),
``image_too_many_alt_texts`` (ALIGN: an image with more than 1000 associated alt-texts).

Hash strings come from this module; a malformed one is a programming error and raises ``ValueError``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import imagehash
import numpy as np
from PIL import Image

from filters.decision import KEEP, Verdict
from filters.near_search import NO_WINNER, near_losers

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
EVAL_DUPLICATE = "eval_duplicate"
IMAGE_TOO_MANY_ALT_TEXTS = "image_too_many_alt_texts"

PHASH_BITS = 64
PHASH_HEX_CHARS = PHASH_BITS // 4
MAX_RADIUS = 24
_HEX = frozenset("0123456789abcdefABCDEF")
DEDUP_MODES = ("near", "exact", "none")


@dataclass(frozen=True)
class DedupConfig:
    """Duplicate settings.

    ``radius``: the largest Hamming distance between pHashes that counts as a near duplicate.
    ``max_group``: the most images one unit of grouped work may hold (a shuffle group, a chunk pair);
    larger groups are decided by combiners or split (``pipelines/best_per_key.py``,
    ``pipelines/near_stages.py``), so no worker ever holds more whatever the data.
    ``max_alt_texts``: ALIGN drops images with more than 1000 associated alt-texts.
    ``mode``: ``near`` (exact copies, then near ones), ``exact`` (sha256 only), or ``none`` (no general
    image dedup, as ALIGN: each distinct alt-text keeps its pair). The eval-set blocklist and the
    alt-text count rule apply in every mode.

    Radius: measured by ``benchmarks/calibrate_phash.py`` on 25 real photos (12 mate-backgrounds + 13
    scikit-image), 19 edits of each, hashed through ``decode_and_resize`` at the shard size (256 px),
    against 139,152 unrelated pairs (the photos + 504 tiles cut from different regions of the large
    ones). pHash sets exactly 32 of 64 bits, so distances are even and an odd radius behaves like the
    even one below it. Recall by edit family at radius 4 / 6 / 8 / 10: JPEG q10–q30 0.95 / 0.99 / 1.00 /
    1.00; downscale 0.5–0.25× 1.00 at every radius ≥ 2; brightness/contrast ±10–20 % and greyscale
    0.98 / 0.99 / 0.99 / 1.00; 2 % crop 0.92 / 0.96 / 0.96 / 0.96; 5 % crop 0.24 / 0.44 / 0.56 / 0.76;
    1–3° rotation 0.32 / 0.36 / 0.48 / 0.60; 10 % crop ≤ 0.22 (pHash is not crop-robust; mirrored
    copies are never found, distance ~32). False matches among unrelated pairs: 0 up to radius 8, 1 at
    10, 3 at 12, 46 at 16 (closest unrelated pair: 10 bits). The search (``filters.near_search``) is
    exact at any radius, and its cost grows with the number of tables, C(r + k, k).
    """

    radius: int = 6
    max_group: int = 1000
    max_alt_texts: int = 1000
    mode: str = "near"

    def __post_init__(self) -> None:
        if self.mode not in DEDUP_MODES:
            raise ValueError(f"DedupConfig: mode must be one of {', '.join(DEDUP_MODES)} (got {self.mode!r})")
        if not 0 <= self.radius <= MAX_RADIUS:
            raise ValueError(
                f"DedupConfig: the pHash radius must be in 0..{MAX_RADIUS} (got {self.radius}); "
                "unrelated photos start to match from 10 bits"
            )
        if self.max_group < 2:
            raise ValueError(f"DedupConfig: max_group must be at least 2 (got {self.max_group})")


DEFAULT_DEDUP = DedupConfig()


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of the bytes as 64 lowercase hex chars."""
    return hashlib.sha256(data).hexdigest()


def phash_hex(image: Image.Image) -> str:
    """imagehash's 64-bit DCT perceptual hash as 16 hex chars (compute it on the decoded RGB image)."""
    return str(imagehash.phash(image))


def phash_value(phash: object) -> int:
    """A pHash's 64 bits as an int; ``ValueError`` unless it is exactly 16 hex digits.

    ``int(s, 16)`` alone would also take a sign, underscores or a ``0x`` prefix (a negative value
    then breaks every uint64 array built from it).
    """
    if not isinstance(phash, str) or len(phash) != PHASH_HEX_CHARS or not all(c in _HEX for c in phash):
        raise ValueError(f"a pHash is {PHASH_HEX_CHARS} hex chars, got {phash!r}")
    return int(phash, 16)


def hamming(a_hex: str, b_hex: str) -> int:
    """Number of differing bits between two 64-bit pHashes."""
    return (phash_value(a_hex) ^ phash_value(b_hex)).bit_count()


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


def survivor_rank(key: str, original_width: int, original_height: int) -> tuple[int, str]:
    """The order in which duplicates are kept (smallest first): largest original pixel count, then key.

    The one definition every dedup path uses (in-memory, grouped, combiner, heavy-hitter), so all agree.
    """
    return survivor_rank_of_pixels(key, original_width * original_height)


def survivor_rank_of_pixels(key: str, pixels: int) -> tuple[int, str]:
    """``survivor_rank`` for a caller that carries the pixel count instead of the sizes."""
    return -pixels, key


def choose_survivor(members: Iterable[M]) -> M:
    """The member a duplicate group keeps: the smallest ``survivor_rank``.

    Depends only on the members, never on their order, so every worker and retry picks the same one.
    """
    survivor = min(
        members, key=lambda m: survivor_rank(m.key, m.original_width, m.original_height), default=None
    )
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


@dataclass(frozen=True)
class HashedImage:
    """What the duplicate decision needs about one image."""

    key: str
    sha256: str
    phash: str
    original_width: int
    original_height: int


def reference_losers(images: Iterable[HashedImage], radius: int) -> dict[str, str]:
    """``{loser key: reason}`` for the whole dedup decision, in memory (keys must be distinct).

    Exact copies (same sha256) lose to their best copy; of the survivors, equal pHashes lose to the
    best of them; then an image loses when any better one lies within ``radius`` (``near_losers``).
    "Better" is ``survivor_rank`` everywhere.
    """
    losers: dict[str, str] = {}
    ranked = sorted(images, key=lambda m: survivor_rank(m.key, m.original_width, m.original_height))
    by_sha: dict[str, HashedImage] = {}
    for image in ranked:
        if by_sha.setdefault(image.sha256, image) is not image:
            losers[image.key] = EXACT_DUPLICATE
    by_phash: dict[str, HashedImage] = {}
    for image in by_sha.values():
        if by_phash.setdefault(image.phash, image) is not image:
            losers[image.key] = NEAR_DUPLICATE
    distinct = list(by_phash.values())  # still in survivor order
    hashes = np.array([phash_value(m.phash) for m in distinct], dtype=np.uint64)
    winners = near_losers(hashes, np.arange(len(distinct), dtype=np.int64), radius)
    for index in np.flatnonzero(winners != NO_WINNER):
        losers[distinct[index].key] = NEAR_DUPLICATE
    return losers
