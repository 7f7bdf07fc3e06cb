"""Counting synsets over the kept captions and building the vocabulary from WordNet (CatLIP's V_tau).

The file format, its checks and the class index are ``contract/vocabulary.py``. Counting is pure
(``count_synsets``, ``add_labels``, ``merge_counts``): the in-memory reference of what
``pipelines/label_stages.py``'s ``BuildVocabulary`` counts with Beam's ``Count.PerElement``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from contract.vocabulary import SynsetEntry, Vocabulary
from filters.synsets import load_wordnet, synset_from_id

V_TAU = 500  # CatLIP: synsets seen fewer than 500 times are pruned


def add_labels(counts: Counter[str], labels: Iterable[str]) -> Counter[str]:
    """Adds one caption's synsets (each once) to ``counts`` in place and returns it."""
    counts.update(set(labels))
    return counts


def count_synsets(label_lists: Iterable[Iterable[str]]) -> Counter[str]:
    """How many captions carry each synset."""
    counts: Counter[str] = Counter()
    for labels in label_lists:
        add_labels(counts, labels)
    return counts


def merge_counts(partials: Iterable[Mapping[str, int]]) -> Counter[str]:
    """Sums partial counts (a Beam combiner's ``merge_accumulators``)."""
    total: Counter[str] = Counter()
    for partial in partials:
        total.update(partial)
    return total


def build_vocabulary(counts: Mapping[str, int], v_tau: int = V_TAU, wordnet: Any = None) -> Vocabulary:
    """Every counted synset with its WordNet name and lemmas; ``kept`` = count ≥ v_tau."""
    if v_tau < 0:
        raise ValueError(f"v_tau must be ≥ 0, not {v_tau}")
    wordnet = wordnet or load_wordnet()
    entries = []
    for synset_id, count in counts.items():
        synset = synset_from_id(synset_id, wordnet)
        if synset is None:
            raise ValueError(f"{synset_id!r} is not a WordNet noun synset id (n%08d)")
        entries.append(SynsetEntry(synset_id, synset.name(), int(count), tuple(synset.lemma_names()),
                                   int(count) >= v_tau))  # fmt: skip
    return Vocabulary.of(v_tau, entries)
