"""``vocabulary.json``: the synset vocabulary curate writes and CatLIP trains on, and its class index.

The file is exactly (ARCHITECTURE.md, "Dataset directory")::

    {"v_tau": 500, "synsets": [{"id": "n02084071", "name": "dog.n.01", "count": 1234,
                                "lemmas": ["dog", "domestic_dog", "Canis_familiaris"], "kept": true}, ...]}

sorted by count descending, then id; ``kept`` = count ≥ v_tau. Every synset seen is listed, pruned
ones too, so the trainer can re-apply another V_tau at load time (``Vocabulary.classes``). The kept
synsets in file order are the classes: position = multi-hot target column = CatLIP classifier row
(``ClassIndex``, the one shape the trainer carries, checkpoints included). Never pickle. Counting the
synsets over captions (WordNet) is ``filters/vocabulary.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

SYNSET_ID = re.compile(r"^n\d{8}$")  # a WordNet noun synset as ``n`` + its 8-digit offset
TSV_COLUMNS = ("id", "name", "count", "kept", "lemmas")


@dataclass(frozen=True)
class SynsetEntry:
    """One vocabulary row."""

    id: str
    name: str
    count: int
    lemmas: tuple[str, ...] = ()
    kept: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "count": self.count, "lemmas": list(self.lemmas),
                "kept": self.kept}  # fmt: skip


@dataclass(frozen=True)
class ClassIndex:
    """The kept synsets at one V_tau: position = target column = CatLIP classifier row."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    v_tau: int

    @cached_property
    def position(self) -> dict[str, int]:
        """Synset id → class index (built once per object)."""
        return {wnid: position for position, wnid in enumerate(self.ids)}

    def multi_hot(self, synset_ids: Iterable[str]) -> list[int]:
        """Sorted class indices of the kept synsets among ``synset_ids`` (the 1s of a target)."""
        position = self.position
        return sorted({position[s] for s in synset_ids if s in position})

    def to_state(self) -> dict[str, Any]:
        """What a checkpoint stores (``from_state`` reads it back)."""
        return {"ids": list(self.ids), "names": list(self.names), "v_tau": self.v_tau}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ClassIndex:
        return cls(tuple(state["ids"]), tuple(state["names"]), int(state["v_tau"]))


@dataclass(frozen=True)
class Vocabulary:
    """Synsets with counts, sorted by count descending then id; rows of the CatLIP classifier."""

    v_tau: int
    synsets: tuple[SynsetEntry, ...] = ()

    @classmethod
    def of(cls, v_tau: int, entries: Iterable[SynsetEntry]) -> Vocabulary:
        """The vocabulary of ``entries`` in file order: count descending, then id."""
        return cls(v_tau, tuple(sorted(entries, key=lambda e: (-e.count, e.id))))

    def kept_ids(self, v_tau: int | None = None) -> list[str]:
        """Ids with count ≥ v_tau (default: this vocabulary's), in file order = class index order."""
        if v_tau is None:
            return [e.id for e in self.synsets if e.kept]
        return [e.id for e in self.synsets if e.count >= v_tau]

    def classes(self, v_tau: int | None = None) -> ClassIndex:
        """The class index at ``v_tau`` (None: the synsets the file marks ``kept``)."""
        kept = set(self.kept_ids(v_tau))
        entries = [entry for entry in self.synsets if entry.id in kept]
        return ClassIndex(
            tuple(entry.id for entry in entries),
            tuple(entry.name for entry in entries),
            self.v_tau if v_tau is None else v_tau,
        )

    def to_json(self) -> str:
        """The ``vocabulary.json`` text: one synset per line, stable byte for byte."""
        rows = ",\n".join("  " + json.dumps(e.to_json(), ensure_ascii=False) for e in self.synsets)
        return (
            f'{{"v_tau": {self.v_tau}, "synsets": [\n{rows}\n]}}\n'
            if rows
            else f'{{"v_tau": {self.v_tau}, "synsets": []}}\n'
        )

    def to_tsv(self) -> str:
        """Tab-separated rows with a ``# v_tau=N`` first line; lemmas joined by spaces."""
        out = io.StringIO()
        out.write(f"# v_tau={self.v_tau}\n")
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(TSV_COLUMNS)
        for e in self.synsets:
            writer.writerow([e.id, e.name, e.count, "true" if e.kept else "false", " ".join(e.lemmas)])
        return out.getvalue()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_json(vocabulary: Vocabulary, path: str | Path) -> Path:
    """Writes ``vocabulary.json`` (to a temporary name, then renamed)."""
    path = Path(path)
    _atomic_write(path, vocabulary.to_json())
    return path


def save_tsv(vocabulary: Vocabulary, path: str | Path) -> Path:
    path = Path(path)
    _atomic_write(path, vocabulary.to_tsv())
    return path


def _entry(raw: Mapping[str, Any], where: str) -> SynsetEntry:
    try:
        entry = SynsetEntry(str(raw["id"]), str(raw["name"]), int(raw["count"]),
                            tuple(str(x) for x in raw["lemmas"]), bool(raw["kept"]))  # fmt: skip
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: bad synset row {raw!r} (needs id, name, count, lemmas, kept)") from err
    if not SYNSET_ID.match(entry.id):
        raise ValueError(f"{where}: {entry.id!r} is not a synset id of the form n%08d")
    return entry


def _checked(v_tau: int, entries: list[SynsetEntry], where: str | Path) -> Vocabulary:
    """The contract the trainer relies on: unique ids and kept = count ≥ v_tau."""
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise ValueError(f"{where}: synset {e.id} is listed twice")
        if e.kept != (e.count >= v_tau):
            raise ValueError(f"{where}: {e.id} has count {e.count} but kept={e.kept} with v_tau={v_tau}")
        seen.add(e.id)
    return Vocabulary.of(v_tau, entries)


def load_json(path: str | Path) -> Vocabulary:
    """Reads ``vocabulary.json``; a malformed file raises ValueError naming the file."""
    path = Path(path)
    return parse_json(path.read_text(encoding="utf-8"), str(path))


def parse_json(text: str, where: str) -> Vocabulary:
    """``vocabulary.json``'s text (from any filesystem); a malformed one raises ValueError naming ``where``."""
    try:
        data = json.loads(text)
        v_tau, rows = int(data["v_tau"]), data["synsets"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: not a vocabulary.json ({err})") from err
    return _checked(v_tau, [_entry(row, where) for row in rows], where)


def load_tsv(path: str | Path) -> Vocabulary:
    """Reads a file written by ``save_tsv``."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("# v_tau="):
        raise ValueError(f"{path}: a vocabulary TSV starts with '# v_tau=N'")
    try:
        v_tau = int(lines[0].removeprefix("# v_tau="))
    except ValueError as err:
        raise ValueError(f"{path}: bad first line {lines[0]!r}") from err
    reader = csv.DictReader(lines[1:], delimiter="\t")
    if tuple(reader.fieldnames or ()) != TSV_COLUMNS:
        raise ValueError(f"{path}: header must be {' '.join(TSV_COLUMNS)}")
    entries = [
        _entry({**row, "kept": row["kept"] == "true", "lemmas": (row["lemmas"] or "").split()}, str(path))
        for row in reader
    ]
    return _checked(v_tau, entries, path)
