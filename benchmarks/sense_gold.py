"""The hand-labelled caption nouns (``tests/data/caption_nouns.tsv``) and how a labeller is scored on them.

Per noun: *right* when one of the labels the labeller gives the caption is an accepted sense of
it. Per label: *precise* when it is a noun sense of a word a person reads as a noun in the caption
(the listed nouns, their words, or a compound of them) — the issue's "label precision"; *strict*
when it is an accepted sense of a listed noun. Labels on a non-English caption are never precise.
The file's rows alternate into a design split and a held-out split (every third caption is
held out), so a rule tuned on one can be checked on the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters.synsets import compound_forms

GOLD_TSV = Path(__file__).resolve().parents[1] / "tests" / "data" / "caption_nouns.tsv"


@dataclass(frozen=True)
class GoldNoun:
    surface: str  # as written in the caption ("hot air balloons")
    accepted: tuple[str, ...]  # synset names ("hot-air_balloon.n.01")


@dataclass(frozen=True)
class GoldCaption:
    language: str
    caption: str
    nouns: tuple[GoldNoun, ...]
    held_out: bool


def load_gold(path: Path = GOLD_TSV) -> list[GoldCaption]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        language, caption, nouns = [*line.split("\t"), ""][:3]
        parsed = []
        for item in filter(None, (part.strip() for part in nouns.split(";"))):
            surface, senses = item.split("=")
            parsed.append(GoldNoun(surface.strip(), tuple(senses.split("|"))))
        rows.append(GoldCaption(language, caption, tuple(parsed), held_out=len(rows) % 3 == 2))
    return rows


def lemma_forms(surface: str) -> set[str]:
    """WordNet spellings a surface form may have: its words joined by "_", "-" or nothing."""
    return set(compound_forms(surface.lower().replace("-", " ").split()))


def noun_senses(surface: str, wordnet: Any) -> set[str]:
    """Names of the noun synsets of ``surface`` as a whole and of each of its words."""
    names = set()
    words = surface.lower().replace("-", " ").split()
    for form in lemma_forms(surface) | set(words) | {surface.lower()}:
        names |= {s.name() for s in wordnet.synsets(form, pos="n")}
    return names


def check_gold(gold: Iterable[GoldCaption], wordnet: Any) -> None:
    """Fails loudly when an accepted synset is not a noun sense of its noun (as a whole or its head word)."""
    for row in gold:
        for noun in row.nouns:
            if noun.surface.lower().replace("-", " ") not in row.caption.lower().replace("-", " "):
                raise AssertionError(f"{noun.surface!r} is not in {row.caption!r}")
            head = noun.surface.lower().replace("-", " ").split()[-1]
            allowed = {s.name() for f in lemma_forms(noun.surface) for s in wordnet.synsets(f, pos="n")}
            allowed |= {s.name() for s in wordnet.synsets(head, pos="n")}
            missing = set(noun.accepted) - allowed
            if missing:
                raise AssertionError(f"{row.caption!r}: {sorted(missing)} are not senses of {noun.surface!r}")


@dataclass
class Score:
    nouns: int = 0
    right: int = 0
    labels: int = 0
    precise: int = 0
    strict: int = 0
    non_english_labels: int = 0
    wrong: list[str] = field(default_factory=list)  # "caption: noun → chosen" for reading
    imprecise: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for name in ("nouns", "right", "labels", "precise", "strict", "non_english_labels"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.wrong += other.wrong
        self.imprecise += other.imprecise


def score_caption(row: GoldCaption, labels: list[str], wordnet: Any, name_of: Callable[[str], str]) -> Score:
    """``labels`` (``n%08d`` ids) for ``row`` against its nouns."""
    names = [name_of(label) for label in labels]
    score = Score(labels=len(names))
    if row.language != "en":
        score.non_english_labels = len(names)
        score.imprecise += [f"{row.caption}: {n}" for n in names]
        return score
    readable = (
        set().union(*(noun_senses(noun.surface, wordnet) for noun in row.nouns)) if row.nouns else set()
    )
    accepted = {name for noun in row.nouns for name in noun.accepted}
    for name in names:
        score.precise += name in readable
        score.strict += name in accepted
        if name not in readable:
            score.imprecise.append(f"{row.caption}: {name}")
    for noun in row.nouns:
        score.nouns += 1
        if set(noun.accepted) & set(names):
            score.right += 1
        else:
            score.wrong.append(f"{row.caption}: {noun.surface} → {', '.join(names) or 'nothing'}")
    return score


def evaluate(
    labels_of: Callable[[str], list[str]], gold: list[GoldCaption], wordnet: Any
) -> dict[str, Score]:
    """{"design", "held-out", "all"} → Score, for a caption → ids function."""
    from filters.synsets import synset_from_id

    def name_of(synset_id: str) -> str:
        synset = synset_from_id(synset_id, wordnet)
        return synset.name() if synset is not None else synset_id

    splits = {"design": Score(), "held-out": Score(), "all": Score()}
    for row in gold:
        score = score_caption(row, labels_of(row.caption), wordnet, name_of)
        splits["held-out" if row.held_out else "design"].add(score)
        splits["all"].add(score)
    return splits
