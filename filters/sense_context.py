"""The ``"context"`` sense rule: a noun's WordNet sense chosen with the caption's other words.

Each sense gets the ``"visual"`` score in log form, log((SemCor count + 1) × lexicographer-file
prior), halved when the noun is not the synset's first lemma ("bathroom" in {toilet, lavatory, …,
bathroom}), plus ``overlap_weight`` × the number of words its *signature* shares with the
caption's *context bag* (an extended Lesk overlap, Banerjee & Pedersen 2003):

* signature of a sense: the content words of its gloss and examples, its lemma names, the lemma
  names (and gloss) of its hypernyms two levels up, of its direct hyponyms, of its part/member/
  substance holonyms and meronyms, and of its topic domain — each word in its WordNet base form;
* context bag: every other content word of the caption in base form, plus, for each other noun,
  the signature of that noun's ``"visual"`` sense (so "mouse" next to "keyboard" meets "device"
  and "computer"; "plate" next to "pasta" meets "dish" and "food").

Signatures are cached per synset and bags per word, so after warm-up a caption costs a few set
intersections per candidate sense. Ties keep WordNet order. Tried on the design half of the
labelled captions and not kept (no gain): IDF-weighted overlaps, lexicographer-file tokens,
verb glosses in the bag, hypernyms three levels up, a second pass with the chosen senses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

# Function words and the glosses' own filler ("usually", "especially", "consisting"), which would
# make any two senses overlap.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "or",
        "and",
        "to",
        "in",
        "on",
        "for",
        "with",
        "by",
        "as",
        "at",
        "from",
        "that",
        "which",
        "who",
        "whom",
        "whose",
        "what",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "these",
        "those",
        "their",
        "there",
        "than",
        "then",
        "so",
        "such",
        "not",
        "no",
        "nor",
        "but",
        "if",
        "into",
        "onto",
        "out",
        "over",
        "under",
        "up",
        "down",
        "off",
        "about",
        "above",
        "below",
        "between",
        "through",
        "during",
        "before",
        "after",
        "while",
        "when",
        "where",
        "how",
        "all",
        "any",
        "each",
        "every",
        "some",
        "many",
        "much",
        "more",
        "most",
        "other",
        "another",
        "one",
        "two",
        "three",
        "several",
        "few",
        "can",
        "may",
        "might",
        "must",
        "will",
        "would",
        "should",
        "could",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "having",
        "use",
        "used",
        "using",
        "usually",
        "especially",
        "often",
        "esp",
        "etc",
        "e",
        "g",
        "i",
        "ie",
        "something",
        "someone",
        "somebody",
        "thing",
        "things",
        "part",
        "parts",
        "kind",
        "kinds",
        "type",
        "types",
        "form",
        "forms",
        "made",
        "make",
        "makes",
        "consisting",
        "consists",
        "consist",
        "having",
        "various",
        "similar",
        "like",
        "certain",
        "especially",
        "small",
        "large",
        "long",
        "short",
        "also",
        "very",
        "typically",
        "commonly",
        "generally",
        "term",
        "name",
        "called",
        "refer",
        "refers",
        "referred",
        "sometimes",
        "way",
        "ways",
        "act",
        "process",
        "state",
        "quality",
    ]
)
_WORD = re.compile(r"[a-z]+")
SIGNATURE_HYPERNYM_DEPTH = 2


class ContextSenses:
    """Chooses among a noun's senses with the caption's other words; one per labeller (caches)."""

    def __init__(
        self,
        wordnet: Any,
        base_score: Callable[[Any, str], float],
        overlap_weight: float = 1.0,
        secondary_lemma: float = 0.5,
    ) -> None:
        self._wordnet = wordnet
        self._base_score = base_score  # filters.synsets.sense_score: (count + 1) × lexname prior
        self.overlap_weight = overlap_weight
        # A word that is not the synset's first lemma names it less often ("bathroom" in the toilet-room
        # synset {toilet, lavatory, ..., bathroom}, "castle" in {palace, castle}).
        self.secondary_lemma = secondary_lemma
        self.signature = lru_cache(maxsize=100_000)(self._signature)
        # SemCor counts are a binary search in a file per call in nltk: cache the whole prior.
        self.prior = lru_cache(maxsize=200_000)(self._prior)
        self._word_bag = lru_cache(maxsize=200_000)(self._bag_of_word)

    def base_form(self, word: str) -> str:
        """The word's WordNet base form for matching ("rodents" → "rodent", "flown" → "fly")."""
        return self._wordnet.morphy(word) or word

    def _content_words(self, text: str) -> set[str]:
        return {self.base_form(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 2}

    def _names(self, synset: Any) -> set[str]:
        return {
            w for lemma in synset.lemma_names() for w in _WORD.findall(lemma.lower()) if w not in STOPWORDS
        }

    def _signature(self, synset: Any) -> frozenset[str]:
        words = self._content_words(" ".join([synset.definition(), *synset.examples()])) | self._names(synset)
        frontier = [synset]
        for depth in range(SIGNATURE_HYPERNYM_DEPTH):
            frontier = [h for s in frontier for h in s.hypernyms() + s.instance_hypernyms()]
            for hypernym in frontier:
                words |= self._names(hypernym)
                if depth == 0:
                    words |= self._content_words(hypernym.definition())
        related = (
            synset.hyponyms() + synset.part_holonyms() + synset.member_holonyms() + synset.substance_holonyms()
            + synset.part_meronyms() + synset.member_meronyms() + synset.substance_meronyms() + synset.topic_domains()
        )  # fmt: skip
        for other in related:
            words |= self._names(other)
        return frozenset(words)

    def _bag_of_word(self, word: str, noun_sense: str | None) -> frozenset[str]:
        bag = {self.base_form(word)}
        if noun_sense is not None:
            bag |= self.signature(self._wordnet.synset(noun_sense))
        return frozenset(bag)

    def context_bag(self, words: Iterable[str], noun_senses: Iterable[str | None]) -> set[str]:
        """The bag for a caption: its other content words, and for each other noun its sense's signature.

        ``noun_senses`` runs beside ``words``: a synset name for nouns (their ``"visual"`` sense), None for
        adjectives and verbs.
        """
        bag: set[str] = set()
        for word, sense in zip(words, noun_senses):
            if word not in STOPWORDS:
                bag |= self._word_bag(word.lower(), sense)
        return bag

    def _prior(self, sense: Any, lemma: str) -> float:
        """log(base score × lemma rank): the part of a sense's score that does not depend on the caption."""
        rank = 1.0 if sense.lemma_names()[0].lower() == lemma.lower() else self.secondary_lemma
        return math.log(self._base_score(sense, lemma) * rank)

    def overlap(self, sense: Any, bag: set[str]) -> int:
        """How many words ``sense``'s signature shares with ``bag``."""
        return len(self.signature(sense) & bag)

    def rank(self, senses: list[Any], lemma: str, bag: set[str]) -> list[Any]:
        """``senses`` best first: log(base score × lemma rank) + ``overlap_weight`` × shared words."""
        if len(senses) < 2:
            return senses
        scores = [
            self.prior(sense, lemma) + self.overlap_weight * self.overlap(sense, bag) for sense in senses
        ]
        order = sorted(range(len(senses)), key=lambda i: -scores[i])  # stable: ties keep WordNet order
        return [senses[i] for i in order]
