"""Caption → WordNet noun synset ids (``n%08d``), CatLIP's multi-label targets.

Pipeline: case normalisation → tokenize + POS-tag → compounds → nouns → WordNet
lemma (morphy: plural → singular) → one sense → ``n%08d`` id. Decisions:

* **Tagger.** nltk's averaged perceptron when its data is installed, else textblob's
  ``PatternTagger`` (a bundled lexicon + Brill rules: no download at all). The two tag
  differently, so ``SynsetLabeler.tagger_name`` says which ran; pin ``tagger=`` when
  workers may differ, or labels differ between machines.
* **Nouns.** NN and NNS. Proper nouns (NNP/NNPS) are names (brands, people, places)
  whose WordNet match is mostly wrong ("Apple", "John" → toilet), so they are dropped,
  except the first word of a sentence (its capital says nothing) and inside compounds.
  A caption that is mostly Title Case or ALL CAPS is lower-cased first: its capitals
  carry no proper-noun signal and would make every word NNP.
* **Compounds.** 3- then 2-token runs that are a WordNet noun lemma ("hot dog", "fire
  truck", "teddy bear", "ice skates") become one synset and their words are not
  labelled again: a hot dog is not a dog. Proper-name synsets (instances: "New York")
  are refused, and a run led by an adjective or verb ("hot water" → a predicament) is
  refused when its sense is abstract.
* **Sense.** ``"first"`` (default, CatLIP's rule): WordNet's first noun sense, i.e. the
  most frequent in SemCor, a non-visual corpus (tiger → "a fierce person").
  ``"visual"``: the class sense maximising (SemCor count + 1) × a prior by lexicographer
  file — 4 for concrete files (animal, artifact, food, ...), 1 for person/group/place-like
  files and named individuals (instances), 0.25 for abstract ones (act, cognition,
  possession, ...); ties keep WordNet order.
  ``benchmarks/bench_synsets.py`` measures both on hand-labelled caption nouns.
* **Totality.** None, non-strings, empty text and text over ``max_chars`` give ``[]``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

from filters.wordnet_data import ensure_wordnet

Sense = Literal["first", "visual"]
TaggerName = Literal["auto", "perceptron", "pattern"]
TagFn = Callable[[str], list[tuple[str, str]]]

SYNSET_ID = re.compile(r"^n\d{8}$")
NOUN_TAGS = frozenset({"NN", "NNS"})
PROPER_TAGS = frozenset({"NNP", "NNPS"})
ANY_NOUN_TAGS = NOUN_TAGS | PROPER_TAGS
# Taggers often call a noun at the end of a run a verb ("teddy/NN bear/VB", "ice skates/VBZ").
COMPOUND_HEAD_TAGS = ANY_NOUN_TAGS | {"VB", "VBZ", "VBP"}
COMPOUND_MODIFIER_TAGS = ANY_NOUN_TAGS | {"JJ", "VB", "VBG", "VBN"}
CONCRETE_LEXNAMES = frozenset(
    f"noun.{n}" for n in ("animal", "artifact", "food", "plant", "object", "body", "substance")
)
NEUTRAL_LEXNAMES = frozenset(
    f"noun.{n}" for n in ("Tops", "person", "location", "group", "phenomenon", "shape")
)
VISIBLE_LEXNAMES = CONCRETE_LEXNAMES | NEUTRAL_LEXNAMES
PRIOR_CONCRETE, PRIOR_NEUTRAL, PRIOR_ABSTRACT = 4.0, 1.0, 0.25
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*$")


@dataclass(frozen=True)
class LabelerConfig:
    """How captions become synsets; the defaults follow CatLIP (first noun sense)."""

    sense: Sense = "first"
    tagger: TaggerName = "auto"
    compounds: bool = True
    proper_nouns: bool = False  # True labels every NNP/NNPS too
    max_chars: int = 2000  # longer texts are not captions: [] and bounded work
    title_case_ratio: float = 0.8  # share of capitalised 4+ letter words that marks Title Case


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
    """Noun senses of ``word`` (a lemma or inflected form, ``_`` between words), best first."""
    if sense not in ("first", "visual"):
        raise ValueError(f"sense must be 'first' or 'visual', not {sense!r}")
    wordnet = wordnet or load_wordnet()
    senses = wordnet.synsets(word.lower(), pos="n")
    if sense == "first" or len(senses) < 2:
        return senses
    lemma = (wordnet.morphy(word.lower(), "n") or word).lower()
    # max() keeps the first of equal scores, so ties stay in WordNet (frequency) order.
    best = max(senses, key=lambda s: sense_score(s, lemma))
    return [best, *(s for s in senses if s is not best)]


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


class SynsetLabeler:
    """Labels captions with sorted unique ``n%08d`` ids; ``load()`` once per worker."""

    def __init__(self, config: LabelerConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or LabelerConfig(), **overrides)
        if self.config.sense not in ("first", "visual"):
            raise ValueError(f"sense must be 'first' or 'visual', not {self.config.sense!r}")
        if self.config.tagger not in ("auto", "perceptron", "pattern"):
            raise ValueError(f"tagger must be 'auto', 'perceptron' or 'pattern', not {self.config.tagger!r}")
        self.tagger_name: str | None = None
        self._tag: TagFn | None = None
        self._wordnet: Any = None

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
            self._noun_id = lru_cache(maxsize=200_000)(self._lookup_noun)
            self._compound_id = lru_cache(maxsize=200_000)(self._lookup_compound)
        return self

    def labels(self, caption: object) -> list[str]:
        """Sorted unique synset ids of the nouns in ``caption``; [] for anything that is not text."""
        if not isinstance(caption, str) or not caption.strip() or len(caption) > self.config.max_chars:
            return []
        self.load()
        tagged = self._tag(normalise_case(caption, self.config.title_case_ratio))
        ids: set[str] = set()
        consumed: set[int] = set()
        if self.config.compounds:
            self._add_compounds(tagged, ids, consumed)
        starts = _sentence_starts(tagged)
        for i, (word, tag) in enumerate(tagged):
            if i in consumed or not _WORD.match(word):
                continue
            if tag in NOUN_TAGS or (tag in PROPER_TAGS and (i in starts or self.config.proper_nouns)):
                found = self._noun_id(word.lower())
                if found:
                    ids.add(found)
        return sorted(ids)

    def _add_compounds(self, tagged: list[tuple[str, str]], ids: set[str], consumed: set[int]) -> None:
        i = 0
        while i < len(tagged) - 1:
            for length in (3, 2):
                run = tagged[i : i + length]
                if len(run) < length or not _compound_shape(run):
                    continue
                all_nouns = all(t in ANY_NOUN_TAGS for _, t in run)
                found = self._compound_id("_".join(w.lower() for w, _ in run), all_nouns)
                if found:
                    ids.add(found)
                    consumed.update(range(i, i + length))
                    i += length - 1
                    break
            i += 1

    def _lookup_noun(self, word: str) -> str | None:
        lemma = self._wordnet.morphy(word, "n")
        if lemma is None:
            return None
        senses = ranked_senses(lemma, self.config.sense, self._wordnet)
        return synset_id(senses[0]) if senses else None

    def _lookup_compound(self, joined: str, all_nouns: bool) -> str | None:
        senses = ranked_senses(joined, self.config.sense, self._wordnet)
        if not senses or senses[0].instance_hypernyms():
            return None
        best = senses[0]
        if not all_nouns and best.lexname() not in VISIBLE_LEXNAMES:
            return None
        return synset_id(best)


def _compound_shape(run: list[tuple[str, str]]) -> bool:
    *modifiers, (_, head_tag) = run
    return (
        head_tag in COMPOUND_HEAD_TAGS
        and all(t in COMPOUND_MODIFIER_TAGS for _, t in modifiers)
        and all(_WORD.match(w) for w, _ in run)
        and any(t in ANY_NOUN_TAGS for _, t in run)
    )


def _sentence_starts(tagged: list[tuple[str, str]]) -> set[int]:
    """Indices of the first word of each sentence (where a capital is no proper-noun signal)."""
    starts, expect = set(), True
    for i, (word, tag) in enumerate(tagged):
        if expect and _WORD.match(word):
            starts.add(i)
            expect = False
        if tag == "." or word in {".", "!", "?"}:
            expect = True
    return starts
