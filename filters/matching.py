"""Allowlist (query) matching with MetaCLIP's word-boundary semantics, on Aho-Corasick.

Semantics. A text and every entry are put in *spaced form*: the punctuation marks
``, . ; : ? ! ``` get a space on each side, every run of whitespace becomes one space, and
the result is padded with a space at both ends. An entry matches when its spaced form occurs
in the text's spaced form, i.e. when its token sequence occurs contiguously in the text's.
For entries without those punctuation marks and texts without whitespace runs this is exactly
MetaCLIP's ``substr_matching`` (``" " + entry + " " in spacing(text)``). Two deliberate
differences: entries are spaced like texts, so "st. louis" or "u.s." can match (in MetaCLIP an
entry containing those marks never matches), and whitespace runs are collapsed, so
"big  dog" matches "big dog". Empty or whitespace-only entries never match.

Case. MetaCLIP is case-sensitive; the default here is case-INsensitive (both sides lowercased)
because alt-text capitalisation is arbitrary ("Golden Retriever puppy" should match
"golden retriever"). ``case_sensitive=True`` gives MetaCLIP's behaviour.

``semantics="metaclip"`` is MetaCLIP's ``substr_matching`` exactly, quirks included (the
``--recipe metaclip`` default): the text is padded with a space at both ends, the marks above get a
space on each side, tabs, newlines and carriage returns become spaces (runs are not collapsed); an
entry matches when ``" " + entry + " "`` occurs in that, so an entry containing one of the marks
never matches and the empty entry matches any text with two spaces in a row; always case-sensitive.
The tests hold its reference: a restatement of MetaCLIP's own code (``tests/test_matching.py``).

Why Aho-Corasick: the naive loop tests every entry against every text (500k substring
searches per caption); the automaton finds all entries in one pass over the text. Because
the automaton's keys carry their bounding spaces, word boundaries cost no extra work.
"""

from __future__ import annotations

from collections.abc import Iterable

import ahocorasick

from filters.text import coerce_text

WRAPPED_PUNCTUATION = ",.;:?!`"
_WRAPS = tuple((mark, f" {mark} ") for mark in WRAPPED_PUNCTUATION)


def spaced(text: str, case_sensitive: bool = False) -> str:
    """The spaced form of ``text``: marks wrapped in spaces, single spaces, padded (see module doc)."""
    if not case_sensitive:
        text = text.lower()
    for mark, wrapped in _WRAPS:  # a membership test per mark beats str.translate on short texts
        if mark in text:
            text = text.replace(mark, wrapped)
    return f" {' '.join(text.split())} "


SEMANTICS = ("words", "metaclip")
_METACLIP_SPACES = ("\t", "\n", "\r")


def metaclip_spacing(text: str) -> str:
    """MetaCLIP's ``spacing``: padded, the marks wrapped in spaces, tabs/newlines/CRs as spaces."""
    text = f" {text} "
    for mark, wrapped in _WRAPS:
        text = text.replace(mark, wrapped)
    for char in _METACLIP_SPACES:
        text = text.replace(char, " ")
    return text


def naive_match(entries: Iterable[object], text: object, case_sensitive: bool = False) -> list[int]:
    """Reference: the ids of ``entries`` whose spaced form occurs in ``text``'s, by testing each one."""
    haystack = spaced(coerce_text(text), case_sensitive)
    matched = []
    for entry_id, entry in enumerate(entries):
        needle = spaced(coerce_text(entry), case_sensitive)
        if needle != "  " and needle in haystack:
            matched.append(entry_id)
    return matched


class QueryMatcher:
    """Finds which allowlist entries a text contains; ``match`` equals ``naive_match`` (``semantics="words"``)
    or MetaCLIP's ``substr_matching`` (``semantics="metaclip"``).

    Picklable cheaply: only the entries travel (a 500k list pickles in well under a second),
    and each worker rebuilds the automaton on first use, or in ``DoFn.setup()`` via ``build()``.
    """

    def __init__(
        self, entries: Iterable[str], case_sensitive: bool = False, semantics: str = "words"
    ) -> None:
        if semantics not in SEMANTICS:
            raise ValueError(f"matching semantics must be one of {SEMANTICS}, not {semantics!r}")
        self.entries: list[str] = list(entries)
        self.semantics = semantics
        self.case_sensitive = case_sensitive or semantics == "metaclip"
        self._automaton: ahocorasick.Automaton | None = None
        # Several entries can share one spaced form ("Dog" and "dog" when case-insensitive, or
        # duplicates); the automaton then stores len(entries) + (index into _shared) for that key.
        self._shared: list[tuple[int, ...]] = []

    def build(self) -> QueryMatcher:
        """Builds the automaton now (otherwise the first ``match`` does); returns ``self``."""
        if self._automaton is None:
            ids_by_key: dict[str, list[int]] = {}
            for entry_id, entry in enumerate(self.entries):
                key = self._key(coerce_text(entry))
                if key is not None:
                    ids_by_key.setdefault(key, []).append(entry_id)
            automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            shared: list[tuple[int, ...]] = []
            # Keys go in sorted: trie nodes that share a prefix are then allocated next to each other.
            # On a 500k list, matching was ~4x slower after inserting in a random order.
            for key in sorted(ids_by_key):
                ids = ids_by_key[key]
                if len(ids) == 1:
                    automaton.add_word(key, ids[0])
                else:
                    automaton.add_word(key, len(self.entries) + len(shared))
                    shared.append(tuple(ids))
            automaton.make_automaton()
            self._shared = shared
            self._automaton = automaton
        return self

    def match(self, text: object) -> list[int]:
        """Sorted unique ids of the entries ``text`` contains; ``[]`` for None/empty/non-text."""
        if not isinstance(text, str):
            text = coerce_text(text)
        if not text and self.semantics == "words":  # (MetaCLIP's "" still pads to "  ")
            return []
        automaton = self._automaton if self._automaton is not None else self.build()._automaton
        if len(automaton) == 0:  # no entry can match (pyahocorasick refuses to search an empty trie)
            return []
        haystack = (
            metaclip_spacing(text) if self.semantics == "metaclip" else spaced(text, self.case_sensitive)
        )
        found = {value for _, value in automaton.iter(haystack)}
        if self._shared and found and max(found) >= len(self.entries):
            size = len(self.entries)
            found = {i for v in found for i in (self._shared[v - size] if v >= size else (v,))}
        return sorted(found)

    def _key(self, entry: str) -> str | None:
        """The string the automaton looks for (None: the entry never matches)."""
        if self.semantics == "metaclip":
            return f" {entry} "
        key = spaced(entry, self.case_sensitive)
        return None if key == "  " else key

    def matched_entries(self, text: object) -> list[str]:
        """The matched entries themselves, in id order."""
        return [self.entries[i] for i in self.match(text)]

    def __len__(self) -> int:
        return len(self.entries)

    def __getstate__(self) -> dict[str, object]:
        return {"entries": self.entries, "case_sensitive": self.case_sensitive, "semantics": self.semantics}

    def __setstate__(self, state: dict[str, object]) -> None:
        semantics = str(state.get("semantics", "words"))
        self.__init__(state["entries"], bool(state["case_sensitive"]), semantics)  # type: ignore[misc, arg-type]
