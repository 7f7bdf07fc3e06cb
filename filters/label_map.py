"""Class names → vocabulary synsets, for CatLIP's Transfer Init (copy classifier rows).

A label is an ImageNet-style id (``"n02084071"``, used as is) or a name with optional
comma-separated synonyms (``"tench, Tinca tinca"``). Each synonym is looked up as a WordNet
noun (``"golden retriever"`` → ``golden_retriever``; a multi-word name WordNet lacks falls
back to its last word, the head noun). A label maps to vocabulary synsets by, in order:

1. ``direct``: every sense of the label that is in the vocabulary (the trainer averages the
   rows). All senses, not just the preferred one, because the captions were labelled with
   whatever sense the labeller chose (under CatLIP's first-sense rule "tiger" is
   tiger.n.01, "a fierce person").
2. ``hypernym`` / ``hyponym``: the nearest ancestors or descendants of the label's preferred
   senses that are in the vocabulary, within ``max_hops`` edges; the fewer hops wins, a
   hypernym on a tie (one concept that contains the label). Its other senses are tried only
   when the preferred ones find nothing.
3. ``nearest``: the vocabulary synset with the highest Wu-Palmer similarity to a preferred
   sense — nltk's ``wup_similarity`` (same numbers, parity-tested) computed from memoised
   hypernym tables, with an exact bounded search so a 20k-synset vocabulary is not scored
   in full for every label. ``min_similarity`` turns weak matches into ``unmapped``.
4. ``unmapped``: the label is not a WordNet noun (the trainer keeps a fresh row).

Everything is deterministic: ties go to the earlier synonym, then the smaller id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from filters.synsets import SYNSET_ID, Sense, load_wordnet, ranked_senses, synset_from_id, synset_id

Relation = Literal["direct", "hypernym", "hyponym", "nearest", "unmapped"]
MAX_HOPS = 3


@dataclass(frozen=True)
class LabelMapping:
    """How one target label initialises its classifier row."""

    label: str
    relation: Relation
    synsets: tuple[str, ...]  # vocabulary ids whose rows are averaged; () when unmapped
    score: float  # Wu-Palmer similarity of the label to those synsets (1.0 for direct)


def _label_senses(name: str, sense: Sense, wordnet: Any) -> tuple[list[Any], list[Any]]:
    """(every candidate sense, the preferred sense of each synonym), both without repeats."""
    name = name.strip()
    if SYNSET_ID.match(name):
        found = synset_from_id(name, wordnet)
        return ([found], [found]) if found else ([], [])
    candidates: list[Any] = []
    preferred: list[Any] = []
    for synonym in (s.strip() for s in name.split(",")):
        words = synonym.lower().split()
        if not words:
            continue
        senses = ranked_senses("_".join(words), sense, wordnet)
        if not senses and len(words) > 1:
            senses = ranked_senses(words[-1], sense, wordnet)
        if senses and senses[0] not in preferred:
            preferred.append(senses[0])
        candidates.extend(s for s in senses if s not in candidates)
    return candidates, preferred


def label_to_synsets(name: str, sense: Sense = "visual", wordnet: Any = None) -> list[str]:
    """Candidate synset ids for a class name, preferred sense of each synonym first."""
    if not isinstance(name, str):
        return []
    candidates, preferred = _label_senses(name, sense, wordnet or load_wordnet())
    ordered = preferred + [c for c in candidates if c not in preferred]
    return [synset_id(s) for s in ordered]


class _SimilarityIndex:
    """Wu-Palmer similarity exactly as nltk computes it for nouns, and a pruned nearest search."""

    def __init__(self, vocab: list[Any]) -> None:
        self.vocab = vocab
        self.in_vocab = set(vocab)
        self._parents: dict[Any, list[Any]] = {}
        self._ancestors: dict[Any, dict[Any, int]] = {}
        self._depths: dict[Any, tuple[int, int]] = {}
        self._members: dict[Any, list[Any]] | None = None

    def parents(self, synset: Any) -> list[Any]:
        if synset not in self._parents:
            self._parents[synset] = synset.hypernyms() + synset.instance_hypernyms()
        return self._parents[synset]

    def ancestors(self, synset: Any) -> dict[Any, int]:
        """Every hypernym (instance hypernyms too) with its shortest distance; the synset itself at 0."""
        if synset not in self._ancestors:
            # Shortest distances in a DAG: the parents' tables plus one, memoised (vocabularies share ancestors).
            distances = {synset: 0}
            for parent in self.parents(synset):
                for ancestor, d in self.ancestors(parent).items():
                    if d + 1 < distances.get(ancestor, d + 2):
                        distances[ancestor] = d + 1
            self._ancestors[synset] = distances
        return self._ancestors[synset]

    def depths(self, synset: Any) -> tuple[int, int]:
        """(min_depth, max_depth) as nltk defines them, memoised."""
        if synset not in self._depths:
            parents = [self.depths(p) for p in self.parents(synset)]
            self._depths[synset] = (
                (1 + min(d for d, _ in parents), 1 + max(d for _, d in parents)) if parents else (0, 0)
            )
        return self._depths[synset]

    def wup(self, a: Any, b: Any) -> float:
        ancestors_a, ancestors_b = self.ancestors(a), self.ancestors(b)
        common = ancestors_a.keys() & ancestors_b.keys()
        if not common:
            return 0.0
        deepest = max(self.depths(s)[0] for s in common)
        lowest = sorted(s for s in common if self.depths(s)[0] == deepest)  # nltk: use_min_depth=True
        subsumer = a if a in lowest else lowest[0]
        depth = self.depths(subsumer)[1] + 1
        return 2.0 * depth / (self._distance(a, subsumer) + self._distance(b, subsumer) + 2 * depth)

    def nearest(self, synset: Any) -> tuple[float, Any] | None:
        """(best Wu-Palmer score, vocabulary synset), ties to the smaller id; None for an empty vocabulary.

        Exact, without scoring the whole vocabulary: a vocabulary synset whose subsumer with
        ``synset`` is S scores at most 2D/(dist(synset, S) + 2D), D = depth(S) + 1. Ancestors
        are visited by that bound, best first, scoring the vocabulary synsets below each,
        and the search stops once the best score beats every bound left.
        """
        if self._members is None:
            self._members = {}
            for v in self.vocab:
                for ancestor in self.ancestors(v):
                    self._members.setdefault(ancestor, []).append(v)
        bounds = []
        for ancestor in self.ancestors(synset):
            if ancestor in self._members:
                depth = self.depths(ancestor)[1] + 1
                bounds.append(
                    (2.0 * depth / (self._distance(synset, ancestor) + 2 * depth), ancestor.name(), ancestor)
                )
        best: tuple[float, str, Any] | None = None
        scored: set[Any] = set()
        for bound, _, ancestor in sorted(bounds, key=lambda b: (-b[0], b[1])):
            if best is not None and best[0] > bound:
                break
            for v in self._members[ancestor]:
                if v not in scored:
                    scored.add(v)
                    score, vid = self.wup(synset, v), synset_id(v)
                    if best is None or score > best[0] or (score == best[0] and vid < best[1]):
                        best = (score, vid, v)
        return (best[0], best[2]) if best else None

    def _distance(self, synset: Any, ancestor: Any) -> int:
        # nltk's shortest_path_distance: the best meeting point above both, not only the subsumer.
        if synset == ancestor:
            return 0
        mine, theirs = self.ancestors(synset), self.ancestors(ancestor)
        return min(d + theirs[s] for s, d in mine.items() if s in theirs)


def _descendant_levels(synset: Any, max_hops: int) -> list[set[Any]]:
    levels, seen, frontier = [], {synset}, [synset]
    for _ in range(max_hops):
        frontier = [h for s in frontier for h in s.hyponyms() + s.instance_hyponyms() if h not in seen]
        seen.update(frontier)
        levels.append(set(frontier))
    return levels


def _related(
    sense: Any, similarity: _SimilarityIndex, max_hops: int
) -> tuple[int, Relation, list[Any]] | None:
    """The closest vocabulary ancestors or descendants of one sense, as (hops, relation, synsets)."""
    ancestors, in_vocab = similarity.ancestors(sense), similarity.in_vocab
    up = {
        hops: [s for s, d in ancestors.items() if d == hops and s in in_vocab]
        for hops in range(1, max_hops + 1)
    }
    down = _descendant_levels(sense, max_hops)
    for hops in range(1, max_hops + 1):
        if up[hops]:
            return hops, "hypernym", up[hops]
        if down[hops - 1] & in_vocab:
            return hops, "hyponym", list(down[hops - 1] & in_vocab)
    return None


def map_labels_to_vocabulary(
    labels: Iterable[str],
    vocab_ids: Iterable[str],
    sense: Sense = "visual",
    max_hops: int = MAX_HOPS,
    min_similarity: float = 0.0,
    wordnet: Any = None,
) -> list[LabelMapping]:
    """One ``LabelMapping`` per label, in label order (see the module docstring for the rules)."""
    wordnet = wordnet or load_wordnet()
    vocab = sorted(
        {s for s in (synset_from_id(i, wordnet) for i in vocab_ids) if s is not None}, key=synset_id
    )
    similarity = _SimilarityIndex(vocab)
    mappings = []
    for label in labels:
        candidates, preferred = _label_senses(label, sense, wordnet) if isinstance(label, str) else ([], [])
        mapping = _map_one(str(label), candidates, preferred, similarity, max_hops)
        if mapping.relation == "nearest" and mapping.score < min_similarity:
            mapping = LabelMapping(mapping.label, "unmapped", (), 0.0)
        mappings.append(mapping)
    return mappings


def _map_one(
    label: str, candidates: list[Any], preferred: list[Any], similarity: _SimilarityIndex, max_hops: int
) -> LabelMapping:
    in_vocab = similarity.in_vocab
    direct = [c for c in candidates if c in in_vocab]
    if direct:
        return LabelMapping(label, "direct", tuple(sorted(synset_id(s) for s in direct)), 1.0)
    # The preferred senses first; the others only when those find nothing ("canine" → tooth first).
    for senses in (preferred, [c for c in candidates if c not in preferred]):
        found = [(r, s) for s in senses if (r := _related(s, similarity, max_hops))]
        if found:
            (_, relation, synsets), origin = min(found, key=lambda f: (f[0][0], f[0][1] != "hypernym"))
            score = sum(similarity.wup(origin, s) for s in synsets) / len(synsets)
            return LabelMapping(label, relation, tuple(sorted(synset_id(s) for s in synsets)), score)
    best: tuple[float, Any] | None = None
    for p in preferred:  # only a strictly better score replaces: ties keep the earlier synonym
        found = similarity.nearest(p)
        if found and (best is None or found[0] > best[0]):
            best = found
    if best is None:
        return LabelMapping(label, "unmapped", (), 0.0)
    return LabelMapping(label, "nearest", (synset_id(best[1]),), best[0])
