"""The synset vocabulary: counts over the kept captions, CatLIP's V_tau pruning, JSON/TSV files.

``vocabulary.json`` is exactly (ARCHITECTURE.md)::

    {"v_tau": 500, "synsets": [{"id": "n02084071", "name": "dog.n.01", "count": 1234,
                                "lemmas": ["dog", "domestic_dog", "Canis_familiaris"], "kept": true}, ...]}

sorted by count descending, then id; ``kept`` = count ≥ v_tau. Every synset seen is listed,
pruned ones too, so the trainer can re-apply another V_tau at load time. Never pickle.
Counting is pure (``count_synsets``, ``add_labels``, ``merge_counts``) so a Beam
``CombineFn`` only wraps it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters.synsets import SYNSET_ID, load_wordnet, synset_from_id

V_TAU = 500  # CatLIP: synsets seen fewer than 500 times are pruned
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
class Vocabulary:
    """Synsets with counts, sorted by count descending then id; rows of the CatLIP classifier."""

    v_tau: int = V_TAU
    synsets: tuple[SynsetEntry, ...] = ()
    _index: dict[int, dict[str, int]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def kept_ids(self, v_tau: int | None = None) -> list[str]:
        """Ids with count ≥ v_tau (default: this vocabulary's), in file order = class index order."""
        if v_tau is None:
            return [e.id for e in self.synsets if e.kept]
        return [e.id for e in self.synsets if e.count >= v_tau]

    def index_of(self, synset_id: str, v_tau: int | None = None) -> int | None:
        """Class index of a synset among ``kept_ids(v_tau)``; None when pruned or never seen."""
        return self._indices(v_tau).get(synset_id)

    def multi_hot(self, synset_ids: Iterable[str], v_tau: int | None = None) -> list[int]:
        """Sorted class indices of the kept synsets in ``synset_ids`` (the 1s of a multi-hot target)."""
        indices = self._indices(v_tau)
        return sorted({indices[s] for s in synset_ids if s in indices})

    def _indices(self, v_tau: int | None) -> dict[str, int]:
        key = self.v_tau if v_tau is None else v_tau
        if key not in self._index:
            self._index[key] = {s: i for i, s in enumerate(self.kept_ids(v_tau))}
        return self._index[key]

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


def add_labels(counts: Counter[str], labels: Iterable[str]) -> Counter[str]:
    """Adds one caption's synsets (each once) to ``counts`` in place and returns it."""
    counts.update(set(labels))
    return counts


def count_synsets(label_lists: Iterable[Iterable[str]]) -> Counter[str]:
    """How many captions carry each synset."""
    counts: Counter[str] = Counter()
    for labels in label_lists:
        add_labels(counts, labels)
    return counts


def merge_counts(partials: Iterable[Mapping[str, int]]) -> Counter[str]:
    """Sums partial counts (a Beam combiner's ``merge_accumulators``)."""
    total: Counter[str] = Counter()
    for partial in partials:
        total.update(partial)
    return total


def _ordered(entries: Iterable[SynsetEntry]) -> tuple[SynsetEntry, ...]:
    return tuple(sorted(entries, key=lambda e: (-e.count, e.id)))


def build_vocabulary(counts: Mapping[str, int], v_tau: int = V_TAU, wordnet: Any = None) -> Vocabulary:
    """Every counted synset with its WordNet name and lemmas; ``kept`` = count ≥ v_tau."""
    if v_tau < 0:
        raise ValueError(f"v_tau must be ≥ 0, not {v_tau}")
    wordnet = wordnet or load_wordnet()
    entries = []
    for synset_id, count in counts.items():
        synset = synset_from_id(synset_id, wordnet)
        if synset is None:
            raise ValueError(f"{synset_id!r} is not a WordNet noun synset id (n%08d)")
        entries.append(SynsetEntry(synset_id, synset.name(), int(count), tuple(synset.lemma_names()),
                                   int(count) >= v_tau))  # fmt: skip
    return Vocabulary(v_tau, _ordered(entries))


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


def _checked(v_tau: int, entries: list[SynsetEntry], path: Path) -> Vocabulary:
    """The contract the trainer relies on: unique ids and kept = count ≥ v_tau."""
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise ValueError(f"{path}: synset {e.id} is listed twice")
        if e.kept != (e.count >= v_tau):
            raise ValueError(f"{path}: {e.id} has count {e.count} but kept={e.kept} with v_tau={v_tau}")
        seen.add(e.id)
    return Vocabulary(v_tau, _ordered(entries))


def load_json(path: str | Path) -> Vocabulary:
    """Reads ``vocabulary.json``; a malformed file raises ValueError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        v_tau, rows = int(data["v_tau"]), data["synsets"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a vocabulary.json ({err})") from err
    return _checked(v_tau, [_entry(row, str(path)) for row in rows], path)


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
