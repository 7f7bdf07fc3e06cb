"""COYO-700M's "the text must contain a noun" (Byeon et al. 2022): ``text_no_noun`` otherwise.

The caption is tagged by the project's offline part-of-speech tagger (``pos_tagging.load_tagger``,
the one the synset labeller uses), after the same case clean-up (a Title Case or ALL CAPS caption is
lower-cased first, so "Click Here Now" is not three proper nouns). Any Penn noun tag counts.
"""

from __future__ import annotations

from filters.decision import KEEP, Verdict
from filters.pos_tagging import TagFn, TaggerName, load_tagger, lower_sentence_starts, normalise_case

TEXT_NO_NOUN = "text_no_noun"
NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})


def has_noun(tagged: list[tuple[str, str]]) -> bool:
    """Whether a tagged caption holds a noun (a word, not punctuation, with a noun tag)."""
    return any(tag in NOUN_TAGS and any(ch.isalpha() for ch in token) for token, tag in tagged)


def check_has_noun(text: str, tag: TagFn) -> Verdict:
    """``text_no_noun`` when ``tag`` finds no noun in the caption, else keep."""
    if not isinstance(text, str) or not text.strip():
        return TEXT_NO_NOUN
    return KEEP if has_noun(tag(lower_sentence_starts(normalise_case(text)))) else TEXT_NO_NOUN


class NounCheck:
    """The rule with its tagger, loaded once (``build``; a DoFn calls it in ``setup``)."""

    def __init__(self, tagger: TaggerName = "auto") -> None:
        self.tagger = tagger
        self._tag: TagFn | None = None

    def build(self) -> NounCheck:
        if self._tag is None:
            _, self._tag = load_tagger(self.tagger)
        return self

    def __call__(self, text: str) -> Verdict:
        return check_has_noun(text, self.build()._tag)

    def __getstate__(self) -> dict[str, object]:  # the tagger is rebuilt where it runs (not picklable)
        return {"tagger": self.tagger}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["tagger"])  # type: ignore[misc, arg-type]
