"""Caption → WordNet noun synset ids (``n%08d``), CatLIP's multi-label targets.

Pipeline: language gate → case normalisation → tokenize + POS-tag (``filters.pos_tagging``) →
compounds → nouns → WordNet lemma (morphy: plural → singular) → one sense → ``n%08d`` id. Decisions:

* **Language.** Only captions whose language (``filters.language``, CLD2; best-effort guess for
  short text) is in ``languages`` (default English, and Scots, which CLD2 calls some plain English
  captions) are labelled: WordNet is English, and "chat" in a French caption is a cat, not a
  bird. ``languages=None`` labels everything.
* **Tagger.** nltk's averaged perceptron when its data is installed, else textblob's
  ``PatternTagger`` (no download at all). The two tag differently, so ``SynsetLabeler.tagger_name``
  says which ran; pin ``tagger=`` when workers may differ, or labels differ between machines.
  A sentence's first capital is lowered before tagging, and nouns the tagger calls adjectives or
  verbs at a phrase end are repaired (``pos_tagging.repair_noun_tags``).
* **Nouns.** NN and NNS. Proper nouns (NNP/NNPS) are names (brands, people, places)
  whose WordNet match is mostly wrong ("Apple", "John" → toilet), so they are dropped,
  except the first word of a sentence (its capital says nothing) and inside compounds.
  A caption that is mostly Title Case or ALL CAPS is lower-cased first: its capitals
  carry no proper-noun signal and would make every word NNP.
* **Compounds.** 3- then 2-token runs that are a WordNet noun lemma, looked up whole with their
  words joined by "_", "-" or nothing ("hot dog", "hot air balloons" → hot-air_balloon, "sea
  shells" → seashell; a hyphenated token too: "close-up" → closeup), become one synset and their
  words are not labelled again: a hot dog is not a dog. Proper-name synsets (instances: "New
  York") are refused, and a run with an adjective, a verb or "of" ("hot water" → a
  predicament, "piece of cake") is refused when its sense is abstract; "bird of prey" is kept.
* **Sense.** ``"first"`` (default, CatLIP's rule): WordNet's first noun sense, i.e. the
  most frequent in SemCor, a non-visual corpus (tiger → "a fierce person").
  ``"visual"``: the class sense maximising (SemCor count + 1) × a prior by lexicographer
  file — 4 for concrete files (animal, artifact, food, ...), 1 for person/group/place-like
  files and named individuals (instances), 0.25 for abstract ones (act, cognition,
  possession, ...); ties keep WordNet order.
  ``"context"``: the visual score plus the overlap of each sense's gloss and relatives with the
  caption's other words (``filters.sense_context``): "mouse" beside "keyboard" is the device.
  ``benchmarks/bench_synsets.py`` measures all three on hand-labelled caption nouns.
* **Totality.** None, non-strings, empty text and text over ``max_chars`` give ``[]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import product
from typing import Any, Literal, NamedTuple

from contract.vocabulary import SYNSET_ID
from filters.language import identify_language
from filters.pos_tagging import (
    WORD,
    TagFn,
    TaggerName,
    load_tagger,
    lower_sentence_starts,
    normalise_case,
    perceptron_data_installed,
    perceptron_tag_fn,
    repair_noun_tags,
)
from filters.sense_context import ContextSenses
from filters.wordnet_data import ensure_wordnet

__all__ = [
    "LabelerConfig", "SynsetLabeler", "compound_forms", "load_tagger", "load_wordnet", "normalise_case",
    "perceptron_data_installed", "perceptron_tag_fn", "ranked_senses", "sense_score", "synset_from_id", "synset_id",
]  # fmt: skip

Sense = Literal["first", "visual", "context"]
SENSES: tuple[str, ...] = ("first", "visual", "context")

NOUN_TAGS = frozenset({"NN", "NNS"})
PROPER_TAGS = frozenset({"NNP", "NNPS"})
ANY_NOUN_TAGS = NOUN_TAGS | PROPER_TAGS
# Taggers often call a noun at the end of a run a verb ("teddy/NN bear/VB", "ice skates/VBZ").
COMPOUND_HEAD_TAGS = ANY_NOUN_TAGS | {"VB", "VBZ", "VBP"}
COMPOUND_MODIFIER_TAGS = ANY_NOUN_TAGS | {"JJ", "VB", "VBG", "VBN"}
# Words whose neighbours give a noun its context: nouns, adjectives, verbs.
CONTEXT_TAGS = ANY_NOUN_TAGS | {"JJ", "JJR", "JJS", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ"}
CONCRETE_LEXNAMES = frozenset(
    f"noun.{n}" for n in ("animal", "artifact", "food", "plant", "object", "body", "substance")
)
NEUTRAL_LEXNAMES = frozenset(
    f"noun.{n}" for n in ("Tops", "person", "location", "group", "phenomenon", "shape")
)
VISIBLE_LEXNAMES = CONCRETE_LEXNAMES | NEUTRAL_LEXNAMES
PRIOR_CONCRETE, PRIOR_NEUTRAL, PRIOR_ABSTRACT = 4.0, 1.0, 0.25


@dataclass(frozen=True)
class LabelerConfig:
    """How captions become synsets; the defaults follow CatLIP (first noun sense)."""

    sense: Sense = "first"
    tagger: TaggerName = "auto"
    compounds: bool = True
    proper_nouns: bool = False  # True labels every NNP/NNPS too
    max_chars: int = 2000  # longer texts are not captions: [] and bounded work
    title_case_ratio: float = 0.8  # share of capitalised 4+ letter words that marks Title Case
    # Label captions in these languages only (None: all). CLD2 takes some plain English for Scots
    # ("on a sunny day" → sco), and Scots captions are English enough for WordNet.
    languages: tuple[str, ...] | None = ("en", "sco")
    context_weight: float = 1.0  # "context": log-score gained per signature word shared with the caption


class _Noun(NamedTuple):
    """A noun (or compound) found in a caption: its token span and its candidate senses, best first."""

    start: int
    end: int
    lemma: str
    senses: tuple[Any, ...]


def compound_forms(words: Sequence[str], closed: bool = True) -> list[str]:
    """WordNet spellings of a multiword noun: words joined by "_" first, then "-", then (``closed``) nothing.

    ``["hot", "air", "balloon"]`` → ``hot_air_balloon``, ``hot_air-balloon``, ..., ``hot-air_balloon``, ...
    Closed forms are for runs of nouns only: "sea shells" is a seashell, but "blue fish" is not a
    bluefish nor "green house" a greenhouse.
    """
    forms = []
    for joins in product(("_", "-", "") if closed else ("_", "-"), repeat=max(len(words) - 1, 0)):
        form = words[0]
        for join, word in zip(joins, words[1:]):
            form += join + word
        forms.append(form)
    return forms


def synset_id(synset: Any) -> str:
    """ImageNet-style id of a noun synset: ``n`` + WordNet offset zero-padded to 8 digits."""
    return f"n{synset.offset():08d}"


def load_wordnet() -> Any:
    """nltk's WordNet reader, installed from Debian first where it is missing."""
    ensure_wordnet(quiet=True)
    from nltk.corpus import wordnet

    wordnet.ensure_loaded()
    return wordnet


def synset_from_id(synset_id_: str, wordnet: Any = None) -> Any | None:
    """The noun synset for an ``n%08d`` id, or None when it is malformed or not in WordNet."""
    if not isinstance(synset_id_, str) or not SYNSET_ID.match(synset_id_):
        return None
    from nltk.corpus.reader.wordnet import WordNetError

    wordnet = wordnet or load_wordnet()
    try:
        with warnings.catch_warnings():  # nltk warns before returning None for an unknown offset
            warnings.simplefilter("ignore", UserWarning)
            return wordnet.synset_from_pos_and_offset("n", int(synset_id_[1:]))
    except WordNetError:
        return None


def sense_score(synset: Any, lemma: str) -> float:
    """The ``"visual"`` score: (SemCor count of this lemma in the synset + 1) × lexname prior."""
    count = sum(lem.count() for lem in synset.lemmas() if lem.name().lower() == lemma)
    lexname = synset.lexname()
    if synset.instance_hypernyms():  # a named individual (Paris, USS Monitor), rarely a caption's noun
        prior = PRIOR_NEUTRAL
    elif lexname in CONCRETE_LEXNAMES:
        prior = PRIOR_CONCRETE
    elif lexname in NEUTRAL_LEXNAMES:
        prior = PRIOR_NEUTRAL
    else:
        prior = PRIOR_ABSTRACT
    return (count + 1) * prior


def ranked_senses(word: str, sense: Sense = "first", wordnet: Any = None) -> list[Any]:
    """Noun senses of ``word`` (a lemma or inflected form, ``_`` between words), best first.

    Out of a caption there is no context, so ``"context"`` ranks as ``"visual"`` here.
    """
    if sense not in SENSES:
        raise ValueError(f"sense must be one of {', '.join(SENSES)}, not {sense!r}")
    wordnet = wordnet or load_wordnet()
    senses = wordnet.synsets(word.lower(), pos="n")
    if sense == "first" or len(senses) < 2:
        return senses
    lemma = (wordnet.morphy(word.lower(), "n") or word).lower()
    # max() keeps the first of equal scores, so ties stay in WordNet (frequency) order.
    best = max(senses, key=lambda s: sense_score(s, lemma))
    return [best, *(s for s in senses if s is not best)]


class SynsetLabeler:
    """Labels captions with sorted unique ``n%08d`` ids; ``load()`` once per worker."""

    def __init__(self, config: LabelerConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or LabelerConfig(), **overrides)
        if self.config.sense not in SENSES:
            raise ValueError(f"sense must be one of {', '.join(SENSES)}, not {self.config.sense!r}")
        if self.config.tagger not in ("auto", "perceptron", "pattern"):
            raise ValueError(f"tagger must be 'auto', 'perceptron' or 'pattern', not {self.config.tagger!r}")
        self.tagger_name: str | None = None
        self._tag: TagFn | None = None
        self._wordnet: Any = None
        self._context: ContextSenses | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Beam pickles DoFns: ship the config only; the worker calls load() in setup().
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["config"])

    def load(self) -> SynsetLabeler:
        """Loads WordNet and the tagger (seconds); idempotent."""
        if self._tag is None:
            self._wordnet = load_wordnet()
            self.tagger_name, self._tag = load_tagger(self.config.tagger)
            # Per-instance caches: caption vocabularies are Zipfian, so most lookups repeat.
            self._noun_senses = lru_cache(maxsize=200_000)(self._lookup_noun)
            self._compound_senses = lru_cache(maxsize=200_000)(self._lookup_compound)
            self._is_noun = lru_cache(maxsize=200_000)(lambda w: bool(self._wordnet.morphy(w, "n")))
            self._other_pos = lru_cache(maxsize=200_000)(
                lambda w: any(self._wordnet.synsets(w, pos) for pos in ("a", "s", "v"))
            )
            if self.config.sense == "context":
                self._context = ContextSenses(self._wordnet, sense_score, self.config.context_weight)
        return self

    def labels(self, caption: object) -> list[str]:
        """Sorted unique synset ids of the nouns in ``caption``; [] for anything that is not text."""
        if not isinstance(caption, str) or not caption.strip() or len(caption) > self.config.max_chars:
            return []
        self.load()
        languages = self.config.languages
        if languages is not None and identify_language(caption).code not in languages:
            return []
        cased = normalise_case(caption, self.config.title_case_ratio)
        text = lower_sentence_starts(cased)
        tagged = repair_noun_tags(self._tag(text), self._is_noun, self._other_pos, cased != text)
        nouns = self._find_nouns(tagged)
        if self.config.sense == "context" and len(nouns) + len(tagged) > 1:
            chosen = self._in_context(tagged, nouns)
        else:
            chosen = [noun.senses[0] for noun in nouns]
        return sorted({synset_id(sense) for sense in chosen})

    def _find_nouns(self, tagged: list[tuple[str, str]]) -> list[_Noun]:
        nouns: list[_Noun] = []
        consumed: set[int] = set()
        if self.config.compounds:
            nouns += self._compounds(tagged, consumed)
        starts = _sentence_starts(tagged)
        for i, (word, tag) in enumerate(tagged):
            if i in consumed or not WORD.match(word):
                continue
            if tag in NOUN_TAGS or (tag in PROPER_TAGS and (i in starts or self.config.proper_nouns)):
                lemma, senses = self._noun_senses(word.lower())
                if senses:
                    nouns.append(_Noun(i, i + 1, lemma, senses))
        return nouns

    def _compounds(self, tagged: list[tuple[str, str]], consumed: set[int]) -> list[_Noun]:
        found, i = [], 0
        while i < len(tagged) - 1:
            for length in (3, 2):
                run = tagged[i : i + length]
                if len(run) < length or not _compound_shape(run):
                    continue
                # A run with an adjective, a verb or "of" ("piece of cake") must name something visible.
                all_nouns = all(t in ANY_NOUN_TAGS for _, t in run)
                lemma, senses = self._compound_senses(tuple(w.lower() for w, _ in run), all_nouns)
                if senses:
                    found.append(_Noun(i, i + length, lemma, senses))
                    consumed.update(range(i, i + length))
                    i += length - 1
                    break
            i += 1
        return found

    def _in_context(self, tagged: list[tuple[str, str]], nouns: list[_Noun]) -> list[Any]:
        """Each noun's sense ranked against the caption's other content words (``filters.sense_context``)."""
        sense_of = {noun.start: noun for noun in nouns}
        covered = {i: noun for noun in nouns for i in range(noun.start, noun.end)}
        words: list[tuple[int, str, str | None]] = []  # (token, word, its noun's visual sense)
        for i, (word, tag) in enumerate(tagged):
            if i in covered:
                if i in sense_of:
                    noun = sense_of[i]
                    words.append((i, noun.lemma, noun.senses[0].name()))  # its visual sense
            elif tag in CONTEXT_TAGS and WORD.match(word):
                words.append((i, word.lower(), None))
        chosen = []
        for noun in nouns:
            others = [(w, sense) for i, w, sense in words if i != noun.start]
            bag = self._context.context_bag([w for w, _ in others], [sense for _, sense in others])
            chosen.append(self._context.rank(list(noun.senses), noun.lemma, bag)[0])
        return chosen

    def _ranking(self) -> Sense:
        return "first" if self.config.sense == "first" else "visual"

    def _lookup_noun(self, word: str) -> tuple[str, tuple[Any, ...]]:
        lemma = self._wordnet.morphy(word, "n")
        if lemma is None and "-" in word:  # "close-up" → closeup, "x-rays" → x-ray
            return self._lookup_compound(tuple(word.split("-")), True)
        if lemma is None:
            return word, ()
        return lemma, tuple(ranked_senses(lemma, self._ranking(), self._wordnet))

    def _lookup_compound(self, words: tuple[str, ...], all_nouns: bool) -> tuple[str, tuple[Any, ...]]:
        for form in compound_forms(words, closed=all_nouns):
            senses = ranked_senses(form, self._ranking(), self._wordnet)
            if not senses:
                continue
            if senses[0].instance_hypernyms():
                return form, ()
            if not all_nouns and senses[0].lexname() not in VISIBLE_LEXNAMES:
                return form, ()
            lemma = self._wordnet.morphy(form, "n") or form
            return lemma, tuple(senses)
        return "_".join(words), ()


def _compound_shape(run: list[tuple[str, str]]) -> bool:
    *modifiers, (_, head_tag) = run
    if len(run) == 3 and run[1][0].lower() == "of":  # "bird of prey", "coat of arms"
        return run[0][1] in NOUN_TAGS and head_tag in COMPOUND_HEAD_TAGS and WORD.match(run[2][0]) is not None
    return (
        head_tag in COMPOUND_HEAD_TAGS
        and all(t in COMPOUND_MODIFIER_TAGS for _, t in modifiers)
        and all(WORD.match(w) for w, _ in run)
        and any(t in ANY_NOUN_TAGS for _, t in run)
    )


def _sentence_starts(tagged: list[tuple[str, str]]) -> set[int]:
    """Indices of the first word of each sentence (where a capital is no proper-noun signal)."""
    starts, expect = set(), True
    for i, (word, tag) in enumerate(tagged):
        if expect and WORD.match(word):
            starts.add(i)
            expect = False
        if tag == "." or word in {".", "!", "?"}:
            expect = True
    return starts
