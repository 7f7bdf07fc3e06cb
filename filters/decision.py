"""The one contract every curation rule follows.

A rule is a pure function that returns ``KEEP`` (``None``) or a short, stable
reason string such as ``"text_too_short"``. Pipelines count reasons with Beam
Metrics and write every dropped record with its stage and reason to rejects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple, TypeAlias

Reason: TypeAlias = str
Verdict: TypeAlias = Reason | None  # None means keep
KEEP: Verdict = None


class Finding(NamedTuple):
    """A verdict with what triggered it, for rules whose rejects should say why (the ``detail`` column).

    ``reason`` is KEEP (None) or a stable reason string; ``detail`` is short free text, e.g. the
    detected classes with their scores, or the matched terms.
    """

    reason: Verdict
    detail: str = ""


KEPT = Finding(KEEP)


def first_reason(checks: Iterable[Callable[[], Verdict]]) -> Verdict:
    """Runs checks in order and returns the first drop reason, or KEEP."""
    for check in checks:
        reason = check()
        if reason is not None:
            return reason
    return KEEP
