"""Per-domain fetch summary ("why is my success rate low"): URLs, successes and failure reasons per host.

``SummariseDomains(top)`` takes the fetch stage's ``(kept, rejects)`` and returns one dict for
``stats.json``::

    {"domains": M, "listed": N,
     "top": [{"domain": "img.example.com", "urls": 120, "ok": 90, "failed": 30,
              "reasons": {"http_error": 25, "fetch_timeout": 5}}, ...],     # the N hosts with most URLs
     "others": {"domains": M - N, "urls": ..., "ok": ..., "failed": ..., "reasons": {...}}}

Everything is a combine: per-host counts are a lifted ``CombinePerKey`` (a host with a million URLs is a
million increments, never a group of a million records), the top N a bounded ``Top.Of`` and the rest
the global sum minus the top. The domain is the URL's host name, lower-cased.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam

DEFAULT_TOP_DOMAINS = 50
OK = "ok"


def host_of(url: object) -> str:
    """The host name of ``url`` (lower case), or a bracketed word for what has none."""
    if not isinstance(url, str) or not url.strip():
        return "(no url)"
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return "(invalid url)"
    if parts.scheme.lower() == "file":
        return "(file)"
    return host.lower()[:253] if host else "(invalid url)"


class SumCounts(beam.CombineFn):
    """Adds ``{outcome: count}`` dicts."""

    def create_accumulator(self) -> dict[str, int]:
        return {}

    def add_input(self, accumulator: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
        for name, value in counts.items():
            accumulator[name] = accumulator.get(name, 0) + value
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[dict[str, int]]) -> dict[str, int]:
        merged: dict[str, int] = {}
        for accumulator in accumulators:
            self.add_input(merged, accumulator)
        return merged

    def extract_output(self, accumulator: dict[str, int]) -> dict[str, int]:
        return dict(sorted(accumulator.items()))


def domain_row(counts: dict[str, int]) -> dict[str, Any]:
    reasons = {name: n for name, n in sorted(counts.items()) if name != OK}
    ok = counts.get(OK, 0)
    failed = sum(reasons.values())
    return {"urls": ok + failed, "ok": ok, "failed": failed, "reasons": reasons}


def summary(top: list[tuple[str, dict[str, int]]], total: dict[str, int], domains: int) -> dict[str, Any]:
    """The stats.json entry from the top hosts, the sum over all hosts and the number of hosts."""
    listed = sorted(top, key=lambda item: (-sum(item[1].values()), item[0]))
    rest = dict(total)
    for _, counts in listed:
        for name, value in counts.items():
            rest[name] = rest.get(name, 0) - value
    others = domain_row({name: n for name, n in rest.items() if n})
    return {
        "domains": domains,
        "listed": len(listed),
        "top": [{"domain": host, **domain_row(counts)} for host, counts in listed],
        "others": {"domains": domains - len(listed), **others},
    }


def _rank(item: tuple[str, dict[str, int]]) -> tuple[int, str]:
    return sum(item[1].values()), item[0]


class SummariseDomains(beam.PTransform):
    """``(fetched, fetch rejects) | SummariseDomains(top)`` → a one-element PCollection (see module doc)."""

    def __init__(self, top: int = DEFAULT_TOP_DOMAINS) -> None:
        super().__init__()
        self._top = top

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        kept, rejects = inputs
        outcomes = (
            kept | "OkHost" >> beam.Map(lambda r: (host_of(r.get("url")), {OK: 1})),
            rejects | "FailedHost" >> beam.Map(lambda r: (host_of(r.get("url")), {r["reason"]: 1})),
        ) | "Outcomes" >> beam.Flatten()
        per_host = outcomes | "PerHost" >> beam.CombinePerKey(SumCounts())
        total = per_host | "Counts" >> beam.Values() | "Total" >> beam.CombineGlobally(SumCounts())
        hosts = per_host | "Hosts" >> beam.combiners.Count.Globally()
        return (
            per_host
            | "Top" >> beam.combiners.Top.Of(self._top, key=_rank)
            | "Summary" >> beam.Map(summary, beam.pvalue.AsSingleton(total), beam.pvalue.AsSingleton(hosts))
        )
