"""The report's pictures: example rejects per reason, and kept samples per top query and per synset.

Reject examples come from ``examples.json`` (``pipelines.examples``). Kept examples come from one
bounded pass over the shards (``scan_shards``): at most ``max_samples`` samples, shard by shard in name
order. Shards are hash buckets of the sample keys, so the first shards are a uniform sample of the
dataset; within it each query (and synset) shows the ``per_group`` samples with the smallest
``unit_hash(key, "report_example")``, so the choice is the same in every run. Memory is bounded by
``groups × per_group`` JPEGs, whatever the dataset's size. Pictures are embedded as ``data:`` URIs:
the page needs no network and no other file to show them.
"""

from __future__ import annotations

import base64
import bisect
import html
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from filters.hashing import unit_hash
from filters.thumbnails import make_thumbnail

_UNCOMPRESSED = "uncompressed"
CARD_CAPTION_CHARS = 140


@dataclass
class ShardScan:
    """What one pass over the shards found: original sizes, and kept examples per query and synset."""

    shapes: list[tuple[int, int]] = field(default_factory=list)
    by_query: dict[str, list[tuple[float, str, str, bytes]]] = field(default_factory=dict)
    by_synset: dict[str, list[tuple[float, str, str, bytes]]] = field(default_factory=dict)
    samples: int = 0


def _keep(groups: dict[str, list], name: str, item: tuple[float, str, str, bytes], per_group: int) -> None:
    entries = groups.get(name)
    if entries is None:
        return
    if len(entries) < per_group or item[:2] < entries[-1][:2]:
        bisect.insort(entries, item, key=lambda e: e[:2])
        del entries[per_group:]


def _samples(filesystems: Any, shards: Iterable[str]) -> Iterator[tuple[dict[str, Any], bytes | None]]:
    """(json, jpeg) of each sample, streamed shard by shard (members of a sample are adjacent)."""
    for shard in shards:
        with (
            filesystems.open(shard, compression_type=_UNCOMPRESSED) as handle,
            tarfile.open(fileobj=handle, mode="r|") as tar,
        ):
            current, meta, jpeg = None, None, None
            for member in tar:
                key, _, extension = member.name.partition(".")
                if key != current:
                    if meta is not None:
                        yield meta, jpeg
                    current, meta, jpeg = key, None, None
                data = tar.extractfile(member).read() if member.isfile() else b""
                if extension == "json":
                    meta = json.loads(data)
                elif extension == "jpg":
                    jpeg = data
            if meta is not None:
                yield meta, jpeg


def scan_shards(
    filesystems: Any,
    shards: list[str],
    queries: list[str],
    synsets: list[str],
    per_group: int,
    max_samples: int,
) -> ShardScan:
    """Sizes of up to ``max_samples`` samples, and per query / synset the hash-chosen examples."""
    scan = ShardScan(by_query={q: [] for q in queries}, by_synset={s: [] for s in synsets})
    for meta, jpeg in _samples(filesystems, sorted(shards)):
        width = meta.get("original_width", meta.get("width"))
        height = meta.get("original_height", meta.get("height"))
        if isinstance(width, int) and isinstance(height, int):
            scan.shapes.append((width, height))
        if jpeg is not None:
            key = str(meta.get("key", ""))
            item = (unit_hash(key, "report_example"), key, str(meta.get("caption", "")), jpeg)
            _keep(scan.by_query, str(meta.get("credited_query")), item, per_group)
            for synset in meta.get("synsets") or []:
                _keep(scan.by_synset, str(synset), item, per_group)
        scan.samples += 1
        if scan.samples >= max_samples:
            break
    return scan


def _image_tag(jpeg: bytes | None, alt: str) -> str:
    if not jpeg:
        return '<div class="noimg">no picture</div>'
    data = base64.b64encode(jpeg).decode("ascii")
    return f'<img class="thumb" alt="{html.escape(alt)}" src="data:image/jpeg;base64,{data}">'


def card(thumbnail: bytes | None, caption: str, lines: Iterable[str] = ()) -> str:
    """One example: picture (or a "no picture" box), caption, and small print (url, detail)."""
    text = caption if len(caption) <= CARD_CAPTION_CHARS else caption[:CARD_CAPTION_CHARS] + "…"
    small = "".join(f'<div class="small">{html.escape(line)}</div>' for line in lines if line)
    return f'<div class="card">{_image_tag(thumbnail, caption)}<div class="cap">{html.escape(text)}</div>{small}</div>'


def kept_cards(entries: list[tuple[float, str, str, bytes]], side: int = 128) -> str:
    cards = [
        card(make_thumbnail(jpeg, side=side, max_bytes=16 * 1024), caption) for _, _, caption, jpeg in entries
    ]
    return (
        '<div class="cards">' + "".join(cards) + "</div>" if cards else "<p>no sample in the shards read.</p>"
    )


def reject_gallery(examples: dict[str, Any] | None, order: list[str], dropped: dict[str, int]) -> str:
    """Every reason's examples from examples.json, in funnel order (stage, then most dropped first)."""
    if not examples or not examples.get("reasons"):
        return "<p>examples.json not found or empty.</p>"
    reasons = examples["reasons"]
    rank = {stage: i for i, stage in enumerate(order)}
    ordered = sorted(reasons, key=lambda r: (rank.get(r.split("/", 1)[0], len(rank)), -dropped.get(r, 0), r))
    parts = []
    for reason in ordered:
        rows = reasons[reason]
        cards = [
            card(
                base64.b64decode(e["thumbnail"]) if e.get("thumbnail") else None,
                e.get("caption") or "(no caption)",
                (e.get("url", ""), e.get("detail", "")),
            )
            for e in rows
        ]
        shown = f"{len(rows)} of {dropped.get(reason, len(rows))} dropped"
        parts.append(
            f'<h3 id="{html.escape(reason)}">{html.escape(reason)} <span class="small">({shown})</span></h3>'
            f'<div class="cards">{"".join(cards)}</div>'
        )
    return "".join(parts)


STYLE = """
.cards { display: flex; flex-wrap: wrap; gap: 0.6em; }
.card { width: 150px; font-size: 0.75em; border: 1px solid #ddd; padding: 4px; overflow-wrap: anywhere; }
.thumb { max-width: 140px; max-height: 140px; display: block; margin: auto; }
.noimg { width: 140px; height: 60px; background: #eee; color: #888; display: flex; align-items: center;
         justify-content: center; }
.cap { margin-top: 3px; }
.small { color: #777; font-size: 0.85em; }
"""
