"""Caption → (language code, reliable?) with CLD2 (``pycld2``, whose tables ship in the wheel: offline).

CLD2 is a naive-Bayes identifier over character n-grams (Chromium's; 80+ languages). The rule:

1. CLD2 on the plain text, ``bestEffort`` off: when it calls the text reliably, that language,
   ``reliable=True`` (most captions of 3+ words: 259 of the 264 English captions in
   ``tests/data/caption_nouns.tsv``).
2. Otherwise (short or mixed text: "a cat", "El perro en la playa"): CLD2's best-effort guess,
   ``reliable=False``. Best effort leans to English on short Latin-script text ("Photo de
   vacances à la plage" → en), so callers that must not mislabel a language should ask for
   ``reliable``.
3. Nothing to go on (no letters, not text, or CLD2 has no guess at all): ``UNDETERMINED`` ("und",
   BCP 47's code for it), ``reliable=False``.

Codes are CLD2's, mostly ISO 639-1 ("en", "fr", "zh", "zh-Hant", "iw" for Hebrew). Work is bounded:
the text is cut to ``MAX_CHARS`` before CLD2 sees it.
"""

from __future__ import annotations

from typing import NamedTuple

import pycld2

from filters.text import coerce_text

UNDETERMINED = "und"
MAX_CHARS = 2_000  # a caption is far shorter; CLD2's cost is linear in what it reads
_CLD2_UNKNOWN = "un"


class LanguageGuess(NamedTuple):
    """A caption's language: ``code`` (CLD2's, or "und") and whether CLD2 called it reliably."""

    code: str
    reliable: bool


UNKNOWN = LanguageGuess(UNDETERMINED, False)


def _cld2(data: bytes, best_effort: bool) -> tuple[bool, str]:
    try:
        reliable, _, details = pycld2.detect(data, isPlainText=True, bestEffort=best_effort)
    except pycld2.error:  # CLD2 refuses some byte sequences; that is "no guess", not a crash
        return False, _CLD2_UNKNOWN
    return reliable, details[0][1]


def identify_language(text: object) -> LanguageGuess:
    """The language of ``text`` by the three steps in the module docstring; never raises."""
    text = coerce_text(text)[:MAX_CHARS]
    if not text.isprintable():  # CLD2 refuses control characters and noncharacters: drop them
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    if not any(ch.isalpha() for ch in text):
        return UNKNOWN
    data = text.encode("utf-8", "replace")  # lone surrogates become "?" instead of raising
    reliable, code = _cld2(data, best_effort=False)
    if reliable and code != _CLD2_UNKNOWN:
        return LanguageGuess(code, True)
    _, code = _cld2(data, best_effort=True)
    return UNKNOWN if code == _CLD2_UNKNOWN else LanguageGuess(code, False)


def is_language(text: object, languages: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
    """Whether ``text``'s guessed language (reliable or best effort) is one of ``languages``."""
    return identify_language(text).code in languages
