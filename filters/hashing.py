"""Deterministic per-sample randomness: every sampling decision is a hash, never ``random()``.

A decision depends only on (sample key, purpose, seed), so it is the same on every
worker, on every retry of a bundle, and in every run with the same seed.
"""

from __future__ import annotations

import hashlib

_SCALE = float(1 << 64)


def unit_hash(key: str, purpose: str, seed: int = 0) -> float:
    """A uniform number in [0, 1) fixed by (key, purpose, seed)."""
    digest = hashlib.blake2b(f"{seed}\x1f{purpose}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def bucket(key: str, buckets: int, purpose: str = "bucket", seed: int = 0) -> int:
    """A bucket in ``range(buckets)`` fixed by (key, purpose, seed); spreads keys over shards."""
    if buckets <= 0:
        raise ValueError("buckets must be positive")
    return int(unit_hash(key, purpose, seed) * buckets)
