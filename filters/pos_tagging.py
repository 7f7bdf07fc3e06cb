"""Part-of-speech tagging for the synset labeller: the tagger, case clean-up and tag repairs.

The tagger is nltk's averaged perceptron when its data is installed, else textblob's
``PatternTagger`` (a bundled lexicon + Brill rules: no download at all). Before tagging, a Title
Case or ALL CAPS caption is lower-cased, and so is the capital of a sentence's first word
("Red kite …" would otherwise be tagged NNP, a name). After tagging, ``repair_noun_tags`` turns
back into nouns the words a lexicon tagger mistakes for adjectives or verbs at the end of a noun
phrase ("at the fair/JJ", "matching t-shirts/JJ").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

TaggerName = Literal["auto", "perceptron", "pattern"]
TagFn = Callable[[str], list[tuple[str, str]]]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([A-Z])([a-z]+)\b")
WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*$")
_DETERMINERS = frozenset({"DT", "PRP$", "POS", "CD"})
# What may follow the last word of a noun phrase.
_PHRASE_END = frozenset(
    {"IN", "TO", ".", ",", ":", "WDT", "VBZ", "VBG", "VBN"}
)  # not CC: "a red and white boat"
_BEFORE_NOUN_END = _DETERMINERS | {"NN", "NNS", "JJ", "VBN", "VBG"}  # "the fair", "the county fair"
_BEFORE_VERB_MEANS_NOUN = _DETERMINERS | {"JJ", "VBG"}  # "polar bear/VB", "burning match/VB"
_REPAIRABLE = frozenset({"JJ", "VB", "VBP", "VBD"})
_PARTICLES = frozenset(
    {"up", "down", "out", "off", "away", "back", "over", "around", "through"}
)  # "close up"


def perceptron_tag_fn(tagger: Any) -> TagFn:
    """Wraps an nltk ``PerceptronTagger``: sentence split, Treebank tokens (no punkt data needed), tags."""
    from nltk.tokenize import NLTKWordTokenizer

    tokenizer = NLTKWordTokenizer()

    def tag(text: str) -> list[tuple[str, str]]:
        sentences = [tokenizer.tokenize(s) for s in _SENTENCE_END.split(text) if s.strip()]
        return [pair for tagged in tagger.tag_sents(sentences) for pair in tagged]

    return tag


def perceptron_data_installed() -> bool:
    """Whether nltk finds the averaged perceptron tagger's English model."""
    import nltk

    try:
        nltk.data.find("taggers/averaged_perceptron_tagger_eng")
    except LookupError:
        return False
    return True


def load_tagger(name: TaggerName = "auto") -> tuple[str, TagFn]:
    """(name of the tagger used, text → [(token, Penn tag)]); ``auto`` prefers nltk's."""
    if name not in ("auto", "perceptron", "pattern"):
        raise ValueError(f"tagger must be 'auto', 'perceptron' or 'pattern', not {name!r}")
    if name == "perceptron" or (name == "auto" and perceptron_data_installed()):
        if not perceptron_data_installed():
            raise RuntimeError(
                "nltk's averaged_perceptron_tagger_eng data is not installed: "
                "use tagger='pattern' (offline) or run nltk.download('averaged_perceptron_tagger_eng')"
            )
        from nltk.tag.perceptron import PerceptronTagger

        return "nltk-perceptron", perceptron_tag_fn(PerceptronTagger())
    from textblob.en.taggers import PatternTagger

    pattern = PatternTagger()
    return "textblob-pattern", lambda text: [(w, t) for w, t in pattern.tag(text)]


def normalise_case(text: str, title_case_ratio: float = 0.8) -> str:
    """Lower-cases a Title Case or ALL CAPS caption, whose capitals say nothing.

    Only words of 4+ letters vote: Title Case leaves short function words ("of", "a") lower.
    """
    words = [w for w in text.split() if len(w) >= 4 and w[:1].isalpha()]
    if len(words) < 2:
        return text
    capitalised = sum(w[0].isupper() for w in words)
    return text.lower() if capitalised >= title_case_ratio * len(words) else text


def lower_sentence_starts(text: str) -> str:
    """ "Red kite over the hills. Wireless mouse" → "red kite over the hills. wireless mouse".

    Only a capitalised word in lower case otherwise (not "NASA", "McDonald"): its capital is the
    sentence's, not a name's. A name that starts a sentence ("London bus") is then tagged as a
    common word, as it was labelled before (sentence-initial NNP counted as a noun).
    """
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).lower() + m.group(3), text)


def repair_noun_tags(
    tagged: list[tuple[str, str]],
    is_noun: Callable[[str], bool],
    has_other_pos: Callable[[str], bool],
    capital_start: bool = False,
) -> list[tuple[str, str]]:
    """Re-tags as NN/NNS the words a lexicon tagger calls adjectives or verbs where only a noun fits.

    Only words WordNet has as nouns (``is_noun``), in one of these places:

    * an adjective or base verb that ends a phrase after a determiner, noun or adjective ("at the
      fair/JJ", "the county fair/JJ", "a thick sole/JJ");
    * a verb right after an adjective, participle or determiner ("polar bear/VB", "burning
      match/VB", "antique saw/VBD", "in full blossom/VB"): English puts no verb there;
    * a base verb that ends the caption after "and" + noun ("a toilet and sink/VB"), or starts it
      before a noun ("drum/VB kit");
    * a plural form with no adjective or verb reading at all (``has_other_pos`` False: "t-shirts/JJ").
    """
    repaired = list(tagged)
    last = len(tagged) - 1
    for i, (word, tag) in enumerate(tagged):
        if tag not in _REPAIRABLE or not WORD.match(word) or not is_noun(word.lower()):
            continue
        before = tagged[i - 1][1] if i else ""
        after = tagged[i + 1][1] if i < last else "."
        noun = (
            (tag in ("JJ", "VB", "VBP") and after in _PHRASE_END and before in _BEFORE_NOUN_END)
            or (tag != "JJ" and before in _BEFORE_VERB_MEANS_NOUN)
            or (tag == "VB" and i == last and before == "CC" and i >= 2 and tagged[i - 2][1] in ("NN", "NNS"))
            or (tag == "VB" and i == 0 and after in ("NN", "NNS"))
            or (
                capital_start
                and tag == "VB"
                and i == 0
                and after == "IN"
                and tagged[1][0].lower() not in _PARTICLES
            )
            or (tag == "JJ" and word.lower().endswith("s") and not has_other_pos(word.lower()))
        )
        if noun:
            repaired[i] = (word, "NNS" if word.lower().endswith("s") and tag == "JJ" else "NN")
    return repaired
