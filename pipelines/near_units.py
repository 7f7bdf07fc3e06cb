"""The pieces every near-duplicate unit shares: the point format, the level-1 plan, one unit's search."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from filters.dedup import NEAR_DUPLICATE, survivor_rank_of_pixels
from filters.near_search import NO_WINNER, TablePlan, make_plan, near_losers

Point = tuple[str, int, int]  # sample key, pHash as a signed 64-bit int (Beam's int coder), original pixels
Verdict = tuple[str, str]  # (reason, detail)
TARGET_SHARE = 0.6  # level-1 keys aim at this share of max_group: a spread-out key's size varies
UNSIGNED = (1 << 64) - 1


@lru_cache(maxsize=64)
def table_plan(radius: int, keep: int) -> TablePlan:
    """Level-1 tables: ``radius + keep`` blocks of the 64 bits, keys of ``keep`` blocks."""
    return make_plan(radius, radius + keep)


def target_group(max_group: int) -> float:
    """The level-1 key size the plan aims at: room below ``max_group`` for a key's random excess."""
    return TARGET_SHARE * max_group


def level_one_plan(radius: int, n: int, target_group: float) -> TablePlan:
    """The fewest level-1 tables whose keys hold at most ``target_group`` of ``n`` spread-out hashes."""
    keep = 1
    while n / 2 ** table_plan(radius, keep).key_bits > target_group and radius + keep < 64 and keep < 4:
        keep += 1
    return table_plan(radius, keep)


def as_signed(value: int) -> int:
    """A 64-bit pattern as the signed int Beam's VarIntCoder carries (it refuses ints >= 2**63)."""
    value &= UNSIGNED
    return value - (1 << 64) if value >> 63 else value


def rank(point: Point) -> tuple[int, str]:
    """``filters.dedup.survivor_rank`` of a point: the most original pixels first, then the key."""
    return survivor_rank_of_pixels(point[0], point[2])


def unit_losers(points: list[Point], keep: int, table: int, radius: int) -> list[tuple[str, Verdict]]:
    """The points of one unit that have a better one within ``radius``, with the winner in the detail.

    The points share table ``table``'s key, so the search spends no tables on those bits.
    """
    if len(points) < 2:
        return []
    points = sorted(points, key=rank)
    hashes = np.array([p[1] for p in points], dtype=np.int64).view(np.uint64)
    order = np.arange(len(points), dtype=np.int64)
    winners = near_losers(hashes, order, radius, fixed_mask=table_plan(radius, keep).masks[table])
    found = []
    for index in np.flatnonzero(winners != NO_WINNER):
        loser, winner = points[index], points[winners[index]]
        distance = ((loser[1] ^ winner[1]) & UNSIGNED).bit_count()
        found.append((loser[0], (NEAR_DUPLICATE, f"near {winner[0]} (pHash distance {distance})")))
    return found
