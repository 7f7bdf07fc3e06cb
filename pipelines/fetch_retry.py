"""When to try a URL again: exponential backoff with deterministic jitter, and ``Retry-After``.

Pure functions (no clock of their own, no ``random()``): the delay before attempt ``n + 1`` is
``min(cap, base × 2^(n-1))`` scaled by a jitter factor in [0.5, 1) drawn from
``unit_hash(url, "backoff/<n>")`` — "equal jitter", so retries of many URLs spread out, yet the same
URL waits the same in every run. A server's ``Retry-After`` (seconds, or an HTTP date) replaces the
backoff when it asks for longer; garbage (``soon``, ``-5``, ``1e9`` written as 10,000 digits) is ignored.
Whether there is time for the wait at all is the caller's business (``fetch_url`` gives up instead of
sleeping past ``--fetch_total_deadline``).
"""

from __future__ import annotations

import email.utils
import math

from filters.hashing import unit_hash

_MAX_HEADER_CHARS = 64  # a Retry-After value longer than this is not one


def backoff_seconds(url: str, attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based) of ``url`` before the next one."""
    if base <= 0 or attempt < 1:
        return 0.0
    exponential = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return exponential * (0.5 + 0.5 * unit_hash(url, f"backoff/{attempt}"))


def retry_after_seconds(value: object, now: float) -> float | None:
    """Seconds a ``Retry-After`` header value asks for (``now``: seconds since the epoch, for dates),
    or None when the value is missing or not a valid delay."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > _MAX_HEADER_CHARS:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    try:
        seconds = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
