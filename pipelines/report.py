"""report.html for a curated dataset: the funnel, per-query balance, the synset long tail and image shapes.

``write_report(dataset_dir)`` reads what the job wrote (``stats.json``, ``query_counts.json``,
``vocabulary.json`` and the shards' ``KEY.json`` members) and writes one self-contained
``report.html`` (plots are matplotlib PNGs embedded as base64, no external files or scripts).
Only ``stats.json`` is required; a section whose input is missing says so instead of failing.
Image shapes are read from at most ``MAX_SIZE_SAMPLES`` samples, shard by shard in name order.
Works on any path Beam's ``FileSystems`` knows (local, ``gs://``, ``s3://``).

CLI: ``python -m pipelines.report DATASET_DIR``.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import logging
import sys
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on workers and CI machines

import matplotlib.pyplot as plt

from contract.files import (
    EXAMPLES_FILE,
    QUERY_COUNTS_FILE,
    REJECTS_DIR,
    REPORT_FILE,
    STATS_FILE,
    VOCABULARY_FILE,
)
from pipelines.report_examples import STYLE, ShardScan, kept_cards, reject_gallery, scan_shards

_UNCOMPRESSED = "uncompressed"  # apache_beam.io.filesystem.CompressionTypes.UNCOMPRESSED
MAX_SIZE_SAMPLES = 100_000
_TOP_ROWS = 25
PICTURE_GROUPS = 12  # queries and synsets shown with kept samples
PICTURES_PER_GROUP = 4


class ReportError(ValueError):
    """The directory is not a dataset the report can be made from (the message says what to do)."""


def write_report(dataset_dir: str) -> str:
    """Writes ``report.html`` into ``dataset_dir`` and returns its path."""
    root = dataset_dir.rstrip("/") or "/"
    stats = _read_json(_join(root, STATS_FILE))
    if stats is None:
        raise ReportError(
            f"{dataset_dir} has no stats.json: pass the --output directory of a finished curation job"
        )
    counts = _read_json(_join(root, QUERY_COUNTS_FILE))
    vocabulary = _read_json(_join(root, VOCABULARY_FILE))
    top_queries = [q["query"] for q in _ranked_queries(counts)[:PICTURE_GROUPS]]
    top_synsets = [s["id"] for s in _ranked_synsets(vocabulary)[:PICTURE_GROUPS]]
    shards = [m.path for m in _filesystems().match([_join(root, "*.tar")])[0].metadata_list]
    scan = scan_shards(_filesystems(), shards, top_queries, top_synsets, PICTURES_PER_GROUP, MAX_SIZE_SAMPLES)
    sections = [
        _funnel_section(stats),
        _examples_section(stats, _read_json(_join(root, EXAMPLES_FILE))),
        _query_section(counts, scan),
        _synset_section(vocabulary, scan),
        _domain_section(stats.get("fetch_domains")),
        _shape_section(scan.shapes),
    ]
    page = _PAGE.format(title=html.escape(f"Curation report: {root}"), style=STYLE, body="\n".join(sections))
    target = _join(root, REPORT_FILE)
    with _filesystems().create(target, mime_type="text/html", compression_type=_UNCOMPRESSED) as out:
        out.write(page.encode("utf-8"))
    return target


def _funnel_section(stats: dict[str, Any]) -> str:
    stages = stats.get("stages", [])
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    labels = ["candidates"] + [f"after {row['stage']}" for row in stages]
    remaining = [stats["read"]] + [row["out"] for row in stages]
    left.barh(labels[::-1], remaining[::-1], color="#4c72b0")
    for y, value in enumerate(remaining[::-1]):
        left.text(value, y, f" {value}", va="center", fontsize=8)
    left.set_title("records left after each stage")
    drops = sorted(
        (
            (f"{row['stage']}/{reason}", count)
            for row in stages
            for reason, count in row.get("reasons", {}).items()
        ),
        key=lambda item: item[1],
    )
    if drops:
        right.barh([name for name, _ in drops], [count for _, count in drops], color="#c44e52")
        right.set_xscale("log")
    right.set_title("dropped, per stage/reason (log scale)")
    right.tick_params(axis="y", labelsize=7)
    rows = [
        (row["stage"], row["in"], row["dropped"], row["out"],
         ", ".join(f"{r} {n}" for r, n in sorted(row.get("reasons", {}).items(), key=lambda x: -x[1])))
        for row in stages
    ]  # fmt: skip
    conserved = "holds" if stats.get("conserved") else "DOES NOT HOLD"
    summary = (
        f"<p>read {stats['read']} → kept {stats['kept']}, dropped {stats.get('dropped', 0)}; "
        f"conservation (read = kept + dropped) {conserved}.</p>"
    )
    return _section(
        "Funnel", summary + _png(figure) + _table(("stage", "in", "dropped", "out", "reasons"), rows)
    )


def _ranked_queries(counts: dict[str, Any] | None) -> list[dict[str, Any]]:
    queries = (counts or {}).get("queries") or []
    return sorted(queries, key=lambda q: (-q.get("credited", 0), -q.get("matched", 0), q["query"]))


def _ranked_synsets(vocabulary: dict[str, Any] | None) -> list[dict[str, Any]]:
    return sorted((vocabulary or {}).get("synsets") or [], key=lambda s: (-s["count"], s["id"]))


def _top_note(shown: int, total: int, what: str, file: str) -> str:
    """ "top N of M" with a link to the full list (a file beside the report)."""
    return (
        f'<p class="small">top {shown} of {total} {what}; the full list is '
        f'<a href="{html.escape(file)}">{html.escape(file)}</a>.</p>'
    )


def _pictures(groups: list[str], found: dict[str, list], label: Any, scanned: int) -> str:
    parts = [f"<h3>{html.escape(label(name))}</h3>{kept_cards(found.get(name, []))}" for name in groups]
    note = (
        f'<p class="small">{PICTURES_PER_GROUP} kept samples each (chosen by key hash) among the first '
        f"{scanned} samples of the shards, which are hash buckets and so a uniform sample.</p>"
    )
    return note + "".join(parts)


def _query_section(counts: dict[str, Any] | None, scan: ShardScan | None = None) -> str:
    if not counts or not counts.get("queries"):
        return _section("Per-query counts", "<p>query_counts.json not found or empty.</p>")
    queries = counts["queries"]
    cap = counts.get("per_query_cap")
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for field, style in (("matched", "-"), ("before_balance", "--"), ("kept", "-"), ("credited", ":")):
        values = sorted((q.get(field, 0) for q in queries if q.get(field, 0) > 0), reverse=True)
        if values:
            axis.loglog(range(1, len(values) + 1), values, style, label=field.replace("_", " "))
    if cap:
        axis.axhline(cap, color="grey", linewidth=0.8, label=f"cap {cap}")
    axis.set_xlabel("query rank")
    axis.set_ylabel("pairs")
    axis.set_title(f"pairs per query, ranked (balance: {counts.get('balance', '?')})")
    axis.legend(fontsize=8)
    top = sorted(queries, key=lambda q: (-q.get("matched", 0), q["query"]))[:_TOP_ROWS]
    rows = [
        (q["query"], q.get("matched", 0), q.get("before_balance", 0), q.get("kept", 0), q.get("credited", 0))
        for q in top
    ]
    note = (
        f"<p>{len(queries)} queries matched at least one pair. <i>matched</i>: after matching; "
        "<i>before balance</i>: entering the final balance; <i>kept</i>: in the output; "
        "<i>credited</i>: output pairs counted against the query's cap.</p>"
    )
    table = _table(("query", "matched", "before balance", "kept", "credited"), rows)
    table = _top_note(len(rows), len(queries), "queries by matches", QUERY_COUNTS_FILE) + table
    pictures = ""
    if scan is not None:
        groups = [q["query"] for q in _ranked_queries(counts)[:PICTURE_GROUPS]]
        pictures = f"<h3>Kept samples of the {len(groups)} queries with most output pairs</h3>"
        pictures += _pictures(groups, scan.by_query, lambda q: f"query “{q}”", scan.samples)
    return _section("Per-query counts before and after balancing", note + _png(figure) + table + pictures)


def _synset_section(vocabulary: dict[str, Any] | None, scan: ShardScan | None = None) -> str:
    if not vocabulary or not vocabulary.get("synsets"):
        return _section("Synset long tail", "<p>vocabulary.json not found or empty.</p>")
    synsets = sorted(vocabulary["synsets"], key=lambda s: (-s["count"], s["id"]))
    v_tau = vocabulary.get("v_tau")
    figure, axis = plt.subplots(figsize=(8, 4.5))
    ranks = range(1, len(synsets) + 1)
    colours = ["#4c72b0" if s.get("kept") else "#bbbbbb" for s in synsets]
    axis.scatter(ranks, [s["count"] for s in synsets], c=colours, s=8)
    axis.set_xscale("log")
    axis.set_yscale("log")
    if v_tau:
        axis.axhline(v_tau, color="#c44e52", linewidth=0.8, label=f"V_tau = {v_tau}")
        axis.legend(fontsize=8)
    axis.set_xlabel("synset rank")
    axis.set_ylabel("samples")
    axis.set_title("synset frequency (blue: kept in the vocabulary, grey: pruned)")
    kept = sum(1 for s in synsets if s.get("kept"))
    rows = [(s["id"], s["name"], s["count"], "yes" if s.get("kept") else "no") for s in synsets[:_TOP_ROWS]]
    note = f"<p>{len(synsets)} synsets seen, {kept} kept (count ≥ V_tau = {v_tau}).</p>"
    table = _top_note(len(rows), len(synsets), "synsets by count", VOCABULARY_FILE)
    table += _table(("id", "synset", "count", "kept"), rows)
    pictures = ""
    if scan is not None:
        names = {s["id"]: s["name"] for s in synsets}
        groups = [s["id"] for s in synsets[:PICTURE_GROUPS]]
        pictures = f"<h3>Kept samples of the {len(groups)} most frequent synsets</h3>"
        pictures += _pictures(groups, scan.by_synset, lambda i: f"{i} {names.get(i, '')}", scan.samples)
    return _section("Synset long tail", note + _png(figure) + table + pictures)


def _examples_section(stats: dict[str, Any], examples: dict[str, Any] | None) -> str:
    order = [row["stage"] for row in stats.get("stages", [])]
    dropped = dict(stats.get("dropped_by_reason", {}))
    per = (examples or {}).get("per_reason", "?")
    note = (
        f'<p class="small">Up to {per} rejects per reason, chosen by key hash; pictures where the image '
        f'was fetched. All of them are in <a href="{REJECTS_DIR}/">{REJECTS_DIR}/</a>*.parquet; these in '
        f'<a href="{EXAMPLES_FILE}">{EXAMPLES_FILE}</a>.</p>'
    )
    return _section("What each rule dropped", note + reject_gallery(examples, order, dropped))


def _domain_section(domains: dict[str, Any] | None) -> str:
    if not domains:
        return _section(
            "Fetch by domain", "<p>nothing was fetched (WebDataset input), or stats.json predates it.</p>"
        )

    def reasons(row: dict[str, Any]) -> str:
        ranked = sorted(row.get("reasons", {}).items(), key=lambda x: (-x[1], x[0]))
        return ", ".join(f"{r} {n}" for r, n in ranked)

    rows = [
        (d["domain"], d["urls"], d["ok"], f"{d['ok'] / d['urls']:.0%}" if d["urls"] else "", reasons(d))
        for d in domains.get("top", [])
    ]
    other = domains.get("others", {})
    if other.get("domains"):
        rows.append((f"({other['domains']} other domains)", other["urls"], other["ok"],
                     f"{other['ok'] / other['urls']:.0%}" if other["urls"] else "", reasons(other)))  # fmt: skip
    note = _top_note(domains.get("listed", 0), domains.get("domains", 0), "domains by URLs", STATS_FILE)
    table = _table(("domain", "URLs", "fetched", "success", "failures"), rows)
    return _section("Fetch by domain", note + table)


def _shape_section(shapes: list[tuple[int, int]]) -> str:
    if not shapes:
        return _section("Image sizes", "<p>no samples with original_width/original_height in the shards.</p>")
    shorter = [min(w, h) for w, h in shapes]
    aspect = [max(w, h) / min(w, h) for w, h in shapes if min(w, h) > 0]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    left.hist(shorter, bins=40, color="#4c72b0")
    left.set_xlabel("shorter side of the original image (px)")
    left.set_ylabel("samples")
    right.hist(aspect, bins=40, color="#55a868")
    right.set_xlabel("aspect ratio (long / short)")
    note = f"<p>{len(shapes)} samples read from the shards (at most {MAX_SIZE_SAMPLES}).</p>"  # noqa: RUF100
    return _section("Image sizes and aspect ratios (as downloaded)", note + _png(figure))


def _read_json(path: str) -> Any:
    filesystems = _filesystems()
    if not filesystems.exists(path):
        return None
    with filesystems.open(path, compression_type=_UNCOMPRESSED) as handle:
        return json.loads(handle.read())


@functools.cache
def _filesystems() -> Any:
    # Imported on first use, after main() has hushed the warning Beam logs at import when the optional
    # GCP extras are absent (it would break the CLI's one-line error).
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _join(root: str, name: str) -> str:
    return f"{root}/{name}" if root != "/" else f"/{name}"


def _png(figure: Any) -> str:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{encoded}">'


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(title: str, content: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{content}</section>"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
section {{ margin-bottom: 2.5em; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}
{style}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""


def main(argv: list[str] | None = None) -> int:
    logging.getLogger().addFilter(lambda record: "apitools not found" not in record.getMessage())
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m pipelines.report DATASET_DIR", file=sys.stderr)
        return 2
    try:
        print(write_report(args[0]))
    except ReportError as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
