"""The text-side NSFW rule: alt-texts with explicit terms from a shipped word list (as COYO-700M did).

``filters/data/nsfw_terms.txt`` holds the terms, one per line, and says which words were left out
because they are mostly innocent in alt-text ("nude heels", "naked cake", "blue tits"). Matching is
whole-word: the caption and every term are lowercased and punctuation becomes spaces (the form
``filters.junk.phrase_key`` gives), then the project's ``QueryMatcher`` (Aho-Corasick, word
boundaries) finds every term in one pass, so the cost does not grow with the list.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path

from filters.decision import KEPT, Finding
from filters.junk import phrase_key
from filters.matching import QueryMatcher
from filters.text import MAX_INPUT_CHARS, coerce_text

TEXT_NSFW = "text_nsfw"


def read_terms(lines: Iterable[str]) -> list[str]:
    """Terms from word-list lines: ``#`` starts a comment, blank lines are skipped, each term in key form."""
    terms = []
    for line in lines:
        term = phrase_key(line.split("#", 1)[0])
        if term:
            terms.append(term)
    return sorted(set(terms))


def load_terms(path: str | Path | None = None) -> list[str]:
    """The shipped list (``filters/data/nsfw_terms.txt``) or the one at ``path`` (same format)."""
    if path is None:
        text = resources.files("filters").joinpath("data/nsfw_terms.txt").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return read_terms(text.splitlines())


class ExplicitTermMatcher:
    """Finds the list's terms in a caption; build once per worker (``build()`` in ``DoFn.setup``)."""

    def __init__(self, terms: Iterable[str] | None = None) -> None:
        self.terms = read_terms(terms) if terms is not None else load_terms()
        self._matcher = QueryMatcher(self.terms)

    def build(self) -> ExplicitTermMatcher:
        self._matcher.build()
        return self

    def find(self, text: object) -> list[str]:
        """The terms ``text`` contains as whole words, sorted; ``[]`` for non-text."""
        key = phrase_key(coerce_text(text)[:MAX_INPUT_CHARS])
        return self._matcher.matched_entries(key) if key else []

    def __getstate__(self) -> dict[str, object]:
        return {"terms": self.terms}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["terms"])  # type: ignore[misc, arg-type]


@cache
def default_matcher() -> ExplicitTermMatcher:
    return ExplicitTermMatcher().build()


def check_text_nsfw(text: object, matcher: ExplicitTermMatcher | None = None) -> Finding:
    """``text_nsfw`` with the matched terms (comma-separated) in the detail, or keep."""
    found = (matcher or default_matcher()).find(text)
    return Finding(TEXT_NSFW, ", ".join(found)) if found else KEPT
