"""ALIGN's rare-token rule: drop alt-texts with tokens outside the raw data's frequent n-grams.

Definition used here. From the raw pool, count for every unigram and bigram (adjacent
``words()`` pair, written ``"w1 w2"``) the number of alt-texts containing it (document
frequency: a spam text that repeats a token 50 times counts once). Keep the top-K unigrams
and top-K bigrams (count descending, ties by the string, so the table is deterministic).
A token of a caption is *rare* when it is not a top unigram AND neither bigram it takes part in
(with the previous or the next token) is a top bigram. The bigram escape keeps names whose
parts are individually uncommon but whose pair is frequent ("hong kong", "rio de", "de janeiro"),
which is what ALIGN's "unigrams and bigrams" buys over a unigram list.

The pipeline counts globally with ``text_ngrams`` per text (a FlatMap + Count.PerElement + Top),
then builds the table with ``TokenFrequencyTable.from_counts``; ``count_ngrams`` does the same
in memory for small pools and tests.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from filters.decision import KEEP, Verdict
from filters.text import words

TEXT_RARE_TOKENS = "text_rare_tokens"
_FORMAT = "token-frequency-table"
_VERSION = 1


def _bigrams(tokens: Sequence[str]) -> list[str]:
    return [f"{a} {b}" for a, b in pairwise(tokens)]


def text_ngrams(text: object) -> tuple[set[str], set[str]]:
    """The distinct unigrams and bigrams (``"w1 w2"``) of one text: its contribution to the counts."""
    tokens = words(text)
    return set(tokens), set(_bigrams(tokens))


def count_ngrams(texts: Iterable[object]) -> tuple[Counter[str], Counter[str]]:
    """Document frequencies of unigrams and bigrams over ``texts`` (in memory)."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for text in texts:
        uni, bi = text_ngrams(text)
        unigrams.update(uni)
        bigrams.update(bi)
    return unigrams, bigrams


def _top(counts: Mapping[str, int], k: int) -> tuple[str, ...]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(token for token, count in ranked[: max(k, 0)] if count > 0)


@dataclass(frozen=True)
class TokenFrequencyTable:
    """The frequent unigrams and bigrams, each tuple ranked from most to least frequent."""

    unigrams: tuple[str, ...]
    bigrams: tuple[str, ...]
    _unigram_set: frozenset[str] = field(init=False, repr=False, compare=False)
    _bigram_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_unigram_set", frozenset(self.unigrams))
        object.__setattr__(self, "_bigram_set", frozenset(self.bigrams))

    @classmethod
    def from_counts(
        cls,
        unigram_counts: Mapping[str, int],
        bigram_counts: Mapping[str, int],
        top_unigrams: int,
        top_bigrams: int,
    ) -> TokenFrequencyTable:
        """Keeps the ``top_unigrams`` / ``top_bigrams`` most frequent (ties broken by the string)."""
        return cls(_top(unigram_counts, top_unigrams), _top(bigram_counts, top_bigrams))

    def rare_tokens(self, tokens: Sequence[str]) -> list[str]:
        """The tokens (lowercased ``words()``) that neither a top unigram nor a top bigram covers."""
        rare = []
        last = len(tokens) - 1
        for i, token in enumerate(tokens):
            if token in self._unigram_set:
                continue
            if i > 0 and f"{tokens[i - 1]} {token}" in self._bigram_set:
                continue
            if i < last and f"{token} {tokens[i + 1]}" in self._bigram_set:
                continue
            rare.append(token)
        return rare

    def to_json(self) -> dict[str, object]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "unigrams": list(self.unigrams),
            "bigrams": list(self.bigrams),
        }

    @classmethod
    def from_json(cls, data: object) -> TokenFrequencyTable:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a token frequency table: expected a JSON object with format={_FORMAT!r}")
        if data.get("version") != _VERSION:
            raise ValueError(f"token frequency table version {data.get('version')!r} is not {_VERSION}")
        lists = data.get("unigrams"), data.get("bigrams")
        if not all(isinstance(x, list) and all(isinstance(t, str) for t in x) for x in lists):
            raise ValueError("token frequency table: 'unigrams' and 'bigrams' must be lists of strings")
        return cls(tuple(lists[0]), tuple(lists[1]))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TokenFrequencyTable:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        try:
            return cls.from_json(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def check_rare_tokens(text: object, table: TokenFrequencyTable, max_rare: int = 0) -> Verdict:
    """``text_rare_tokens`` when more than ``max_rare`` tokens of ``text`` are rare (ALIGN: any).

    A text with no words has no rare tokens (an empty caption is ``check_caption``'s business).
    """
    return TEXT_RARE_TOKENS if len(table.rare_tokens(words(text))) > max_rare else KEEP
