"""The one contract every curation rule follows.

A rule is a pure function that returns ``KEEP`` (``None``) or a short, stable
reason string such as ``"text_too_short"`` (a ``Finding`` when the reject should
say what triggered it). A pipeline stage turns a rule's verdict into its own
contract, the record to keep or a ``Reject(reason, detail)``
(``pipelines/rule_stage.py``), which is counted in Beam Metrics and written with
its stage and reason to rejects.
"""

from __future__ import annotations

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


class Reject(NamedTuple):
    """A record dropped by a stage: the stable ``reason`` and a short ``detail`` for the rejects table."""

    reason: Reason
    detail: str = ""
