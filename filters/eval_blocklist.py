"""Evaluation-set blocklist: drop training images that are (near-)duplicates of evaluation images.

ALIGN removes duplicates and near-duplicates of downstream evaluation test images; COYO does it
with pHash. ``build_eval_blocklist`` hashes an evaluation set (image folders, searched recursively,
and/or WebDataset ``.tar`` shards) into sha256 + pHash entries, hashing each image exactly as the
pipeline does (``decode_and_resize`` with the same ``ImageRules``, then ``phash_hex``), so the two
sides compare like with like. The blocklist is saved and loaded as JSON. ``EvalBlocklist.check``
looks a candidate up by sha256 and through the same block-combination tables as the near-duplicate
search (``filters.near_search.make_plan`` at the blocklist's radius): it only compares against
entries that share a table key with the candidate (pigeonhole: every entry within the radius does),
never scans the whole list.

An evaluation file that is not a usable image is skipped and counted by reason in ``skipped``;
a wrong path or an unreadable tar raises ``EvalSetError`` with a one-line message.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from filters.decision import KEEP, Reason, Verdict
from filters.dedup import DEFAULT_DEDUP, EVAL_DUPLICATE, phash_hex, phash_value, sha256_hex
from filters.image import DEFAULT_RULES, ImageRules, decode_and_resize
from filters.near_search import make_plan

FORMAT_VERSION = 1
MAX_CANDIDATES = 1024  # entries one table key may share before the index uses longer keys
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


class EvalSetError(ValueError):
    """A user-facing problem with the evaluation set or blocklist file (the message says what to do)."""


@dataclass(frozen=True)
class EvalEntry:
    """One evaluation image: where it came from and its hashes."""

    source: str
    sha256: str
    phash: str


@dataclass
class EvalBlocklist:
    """Evaluation-image hashes with a sha256 set and a pHash table index for matches within ``radius``."""

    entries: list[EvalEntry]
    radius: int = DEFAULT_DEDUP.radius
    output_side: int = DEFAULT_RULES.output_side
    skipped: dict[str, int] = field(default_factory=dict)
    _by_sha: dict[str, int] = field(init=False, repr=False, compare=False)
    _masks: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _hashes: np.ndarray = field(init=False, repr=False, compare=False)
    _tables: list[tuple[np.ndarray, np.ndarray]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_sha = {}
        for position, entry in enumerate(self.entries):
            self._by_sha.setdefault(entry.sha256, position)
        self._hashes = np.array([phash_value(entry.phash) for entry in self.entries], dtype=np.uint64)
        # keys of one block (r + 1 tables) while they hold at most MAX_CANDIDATES entries, else of two
        plan = make_plan(self.radius, self.radius + 1)
        if len(self.entries) / 2**plan.key_bits > MAX_CANDIDATES:
            plan = make_plan(self.radius, self.radius + 2)
        self._masks = plan.masks
        self._tables = []  # per table: the entries' keys sorted, and their positions
        for mask in self._masks:
            keys = self._hashes & np.uint64(mask)
            order = np.argsort(keys, kind="stable")
            self._tables.append((keys[order], order))

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, sha256: str | None, phash: str | None, radius: int | None = None) -> EvalEntry | None:
        """The evaluation image that ``(sha256, phash)`` duplicates, or None. Either hash may be None.

        ``radius`` defaults to the blocklist's; a smaller one is fine, a larger one raises ``ValueError``.
        """
        radius = self.radius if radius is None else radius
        if not 0 <= radius <= self.radius:
            raise ValueError(
                f"radius {radius} needs a blocklist indexed for it (this one is for {self.radius})"
            )
        if sha256 is not None and sha256 in self._by_sha:
            return self.entries[self._by_sha[sha256]]
        if not phash:
            return None
        try:
            value = phash_value(phash)
        except ValueError:  # a malformed candidate hash cannot match anything
            return None
        first = None
        for positions in self._candidates(value):
            near = positions[np.bitwise_count(self._hashes[positions] ^ np.uint64(value)) <= radius]
            if len(near):
                first = int(near.min()) if first is None else min(first, int(near.min()))
        return None if first is None else self.entries[first]  # the first entry that matches

    def candidate_count(self, phash: str) -> int:
        """How many entries a lookup of ``phash`` compares (with repeats across tables): the index's cost."""
        return sum(len(positions) for positions in self._candidates(phash_value(phash)))

    def _candidates(self, value: int) -> list[np.ndarray]:
        """Per table, the positions of the entries that share ``value``'s key."""
        found = []
        for mask, (keys, order) in zip(self._masks, self._tables, strict=True):
            key = np.uint64(value & mask)
            low, high = np.searchsorted(keys, key, "left"), np.searchsorted(keys, key, "right")
            if high > low:
                found.append(order[low:high])
        return found

    def check(self, sha256: str | None, phash: str | None, radius: int | None = None) -> Verdict:
        """``eval_duplicate`` when the image matches an evaluation image exactly or within ``radius``."""
        return EVAL_DUPLICATE if self.find(sha256, phash, radius) is not None else KEEP

    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "output_side": self.output_side,
            "skipped": dict(sorted(self.skipped.items())),
            "images": [{"source": e.source, "sha256": e.sha256, "phash": e.phash} for e in self.entries],
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, radius: int = DEFAULT_DEDUP.radius) -> EvalBlocklist:
        """Reads a blocklist written by ``save`` and indexes it for matches within ``radius``."""
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            if payload.get("format_version") != FORMAT_VERSION:
                raise EvalSetError(f"{path}: blocklist format_version must be {FORMAT_VERSION}; rebuild it")
            entries = [EvalEntry(item["source"], item["sha256"], item["phash"]) for item in payload["images"]]
            return cls(entries, radius, int(payload["output_side"]), dict(payload.get("skipped", {})))
        except EvalSetError:
            raise
        except FileNotFoundError:
            raise EvalSetError(
                f"eval blocklist not found: {path}; build it with build_eval_blocklist"
            ) from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise EvalSetError(f"{path} is not a valid eval blocklist ({error}); rebuild it") from None


def iter_eval_images(paths: Iterable[str | Path]) -> Iterator[tuple[str, bytes]]:
    """``(source, bytes)`` for every image file under folders (recursively), in ``.tar`` shards, or given directly.

    Files are yielded in sorted order, so a blocklist built twice from the same set is identical.
    """
    for path in map(Path, paths):
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if file.suffix.lower() in IMAGE_SUFFIXES:
                    yield str(file), file.read_bytes()
                elif file.name.endswith((".tar", ".tar.gz", ".tgz")):
                    yield from _iter_tar(file)
        elif path.is_file() and path.name.endswith((".tar", ".tar.gz", ".tgz")):
            yield from _iter_tar(path)
        elif path.is_file():
            yield str(path), path.read_bytes()
        else:
            raise EvalSetError(f"eval set path does not exist: {path}; pass image folders or .tar shards")


def _iter_tar(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path) as archive:
            for member in sorted(archive.getmembers(), key=lambda m: m.name):
                if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                    stream = archive.extractfile(member)
                    if stream is not None:
                        yield f"{path}::{member.name}", stream.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise EvalSetError(f"cannot read eval shard {path} ({error}); check that it is a tar file") from None


def hash_eval_image(data: bytes, rules: ImageRules = DEFAULT_RULES) -> tuple[str, str] | Reason:
    """``(sha256 of the bytes, pHash of the decoded image)`` as the pipeline computes them, or a reason."""
    processed = decode_and_resize(data, rules)
    if isinstance(processed, str):
        return processed
    return sha256_hex(data), phash_hex(processed.image)


def build_eval_blocklist(
    paths: Iterable[str | Path], rules: ImageRules = DEFAULT_RULES, radius: int = DEFAULT_DEDUP.radius
) -> EvalBlocklist:
    """Hashes every evaluation image under ``paths``; unusable files are counted in ``skipped`` by reason."""
    entries: list[EvalEntry] = []
    skipped: Counter[str] = Counter()
    for source, data in iter_eval_images(paths):
        hashed = hash_eval_image(data, rules)
        if isinstance(hashed, str):
            skipped[hashed] += 1
        else:
            entries.append(EvalEntry(source, *hashed))
    return EvalBlocklist(entries, radius, rules.output_side, dict(skipped))
