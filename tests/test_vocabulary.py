"""Synset vocabulary (counting, V_tau pruning, JSON/TSV, class indices) and label → vocabulary maps."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from contract.vocabulary import ClassIndex, SynsetEntry, load_json, load_tsv, save_json, save_tsv
from filters.label_map import _SimilarityIndex, label_to_synsets, map_labels_to_vocabulary
from filters.synsets import load_wordnet, synset_id
from filters.vocabulary import V_TAU, add_labels, build_vocabulary, count_synsets, merge_counts

DOG, CAT, BALL = "n02084071", "n02121620", "n02778669"


@pytest.fixture(scope="module")
def wn():
    return load_wordnet()


@pytest.fixture(scope="module")
def vocab(wn):
    return build_vocabulary({CAT: 7, DOG: 7, BALL: 2}, v_tau=5, wordnet=wn)


def test_counts_each_synset_once_per_caption():
    label_lists = [[DOG, CAT], [DOG, DOG], [], [BALL, DOG]]
    assert count_synsets(label_lists) == Counter({DOG: 3, CAT: 1, BALL: 1})
    assert add_labels(Counter({DOG: 1}), [DOG, DOG, CAT]) == Counter({DOG: 2, CAT: 1})


def test_merged_partial_counts_equal_one_pass():
    label_lists = [[DOG, CAT], [DOG], [BALL], [CAT, BALL, DOG], [DOG]]
    partials = [
        count_synsets(label_lists[:2]),
        count_synsets(label_lists[2:3]),
        count_synsets(label_lists[3:]),
    ]
    assert merge_counts(partials) == count_synsets(label_lists)
    assert merge_counts([]) == Counter()


def test_build_names_lemmas_order_and_pruning(vocab):
    assert vocab.v_tau == 5
    # count descending, then id: the two 7s by id
    assert [(e.id, e.name, e.count, e.kept) for e in vocab.synsets] == [
        (DOG, "dog.n.01", 7, True),
        (CAT, "cat.n.01", 7, True),
        (BALL, "ball.n.01", 2, False),
    ]
    assert vocab.synsets[0].lemmas == ("dog", "domestic_dog", "Canis_familiaris")
    assert vocab.kept_ids() == [DOG, CAT]


def test_catlip_default_v_tau_is_500(wn):
    assert V_TAU == 500
    vocab = build_vocabulary({DOG: 500, CAT: 499}, wordnet=wn)
    assert vocab.kept_ids() == [DOG]
    assert [e.kept for e in vocab.synsets] == [True, False]


def test_v_tau_reapplied_at_load_time(vocab):
    assert vocab.kept_ids(v_tau=1) == [DOG, CAT, BALL]
    assert vocab.kept_ids(v_tau=8) == []
    assert BALL not in vocab.classes().position  # pruned at v_tau=5
    assert vocab.classes(v_tau=2).position[BALL] == 2
    assert vocab.classes().position[CAT] == 1
    assert "n99999999" not in vocab.classes(v_tau=0).position
    assert vocab.classes() == ClassIndex((DOG, CAT), ("dog.n.01", "cat.n.01"), 5)


def test_multi_hot_indices(vocab):
    assert vocab.classes().multi_hot([CAT, DOG, CAT, BALL, "n00000000"]) == [0, 1]
    assert vocab.classes(v_tau=1).multi_hot([BALL]) == [2]
    assert vocab.classes().multi_hot([]) == []


def test_class_index_round_trips_through_a_checkpoint_state(vocab):
    classes = vocab.classes(v_tau=1)
    state = json.loads(json.dumps(classes.to_state()))  # what torch.save / a JSON config would keep
    assert ClassIndex.from_state(state) == classes
    assert ClassIndex.from_state(state).multi_hot([BALL, DOG]) == [0, 2]


def test_json_is_exactly_the_contract_format(vocab, tmp_path):
    path = save_json(vocab, tmp_path / "vocabulary.json")
    data = json.loads(path.read_text())
    assert list(data) == ["v_tau", "synsets"] and data["v_tau"] == 5
    assert data["synsets"][0] == {
        "id": DOG,
        "name": "dog.n.01",
        "count": 7,
        "lemmas": ["dog", "domestic_dog", "Canis_familiaris"],
        "kept": True,
    }
    assert [list(row) for row in data["synsets"]] == [["id", "name", "count", "lemmas", "kept"]] * 3
    assert load_json(path) == vocab
    # byte-stable: the same vocabulary always writes the same file
    assert save_json(load_json(path), tmp_path / "again.json").read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary name was renamed away


def test_empty_vocabulary_round_trips(tmp_path, wn):
    empty = build_vocabulary({}, wordnet=wn)
    assert json.loads(empty.to_json()) == {"v_tau": 500, "synsets": []}
    assert load_json(save_json(empty, tmp_path / "v.json")) == empty
    assert load_tsv(save_tsv(empty, tmp_path / "v.tsv")) == empty


def test_tsv_round_trip(vocab, tmp_path):
    path = save_tsv(vocab, tmp_path / "vocabulary.tsv")
    lines = path.read_text().splitlines()
    assert lines[0] == "# v_tau=5"
    assert lines[1].split("\t") == ["id", "name", "count", "kept", "lemmas"]
    assert lines[2].split("\t") == [DOG, "dog.n.01", "7", "true", "dog domestic_dog Canis_familiaris"]
    assert load_tsv(path) == vocab


def test_unknown_synset_id_in_counts_is_an_error(wn):
    with pytest.raises(ValueError, match="n99999999"):
        build_vocabulary({"n99999999": 3}, wordnet=wn)
    with pytest.raises(ValueError, match="v_tau"):
        build_vocabulary({DOG: 3}, v_tau=-1, wordnet=wn)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("not json", "not a vocabulary.json"),
        ('{"synsets": []}', "not a vocabulary.json"),
        ('{"v_tau": 5, "synsets": [{"id": "n02084071"}]}', "bad synset row"),
        (
            '{"v_tau": 5, "synsets": [{"id": "dog", "name": "d", "count": 1, "lemmas": [], "kept": false}]}',
            "n%08d",
        ),
        (
            '{"v_tau": 5, "synsets": [{"id": "n02084071", "name": "d", "count": 1, "lemmas": [], "kept": true}]}',
            "kept",
        ),
    ],
)
def test_malformed_json_names_the_file(tmp_path, text, problem):
    path = tmp_path / "vocabulary.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem) as err:
        load_json(path)
    assert str(path) in str(err.value)


def test_duplicate_rows_and_bad_tsv_rejected(tmp_path):
    entry = SynsetEntry(DOG, "dog.n.01", 3, ("dog",), False).to_json()
    path = tmp_path / "dup.json"
    path.write_text(json.dumps({"v_tau": 5, "synsets": [entry, entry]}))
    with pytest.raises(ValueError, match="twice"):
        load_json(path)
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tname\n")
    with pytest.raises(ValueError, match="v_tau"):
        load_tsv(bad)
    bad.write_text("# v_tau=5\nid\tname\n")
    with pytest.raises(ValueError, match="header"):
        load_tsv(bad)


def test_real_captions_end_to_end(wn, tmp_path):
    from filters.synsets import SynsetLabeler

    labeler = SynsetLabeler().load()
    captions = ["a dog on the grass", "two dogs and a cat", "a cat", "a red ball", "Dog with a ball"]
    vocab = build_vocabulary(count_synsets(labeler.labels(c) for c in captions), v_tau=2, wordnet=wn)
    # dog 3, then cat and ball with 2 each in id order; grass (1) is pruned
    assert vocab.kept_ids() == [DOG, CAT, synset_id(wn.synset("ball.n.01"))]
    reloaded = load_json(save_json(vocab, tmp_path / "v.json"))
    assert reloaded.classes().multi_hot(labeler.labels("a cat and a dog")) == [0, 1]


# --- filters/label_map.py: target labels → vocabulary synsets (Transfer Init) ---


def names(wn, synset_ids) -> list[str]:
    return [wn.synset_from_pos_and_offset("n", int(i[1:])).name() for i in synset_ids]


def test_label_to_synsets(wn):
    assert names(wn, label_to_synsets("golden retriever")) == ["golden_retriever.n.01"]
    assert names(wn, label_to_synsets("tiger")) == ["tiger.n.02", "tiger.n.01"]  # visual sense first
    assert names(wn, label_to_synsets("tiger", sense="first")) == ["tiger.n.01", "tiger.n.02"]
    assert names(wn, label_to_synsets("pickup truck")) == ["pickup.n.01"]
    assert names(wn, label_to_synsets("tench, Tinca tinca")) == ["tench.n.01"]  # synonyms, no repeats
    assert label_to_synsets("n02084071") == [DOG] and label_to_synsets(" n02084071 ") == [DOG]
    assert label_to_synsets("purple dog")[0] == DOG  # unknown phrase: its head noun
    for nothing in ("n99999999", "zzzz qqqq", "", ",", None, 42):
        assert label_to_synsets(nothing) == []


@pytest.fixture(scope="module")
def small_vocab(wn):
    kept = ["dog.n.01", "cat.n.01", "car.n.01", "tiger.n.01", "retriever.n.01", "truck.n.01", "bird.n.01"]
    return [synset_id(wn.synset(n)) for n in kept]


def test_map_labels_relations(wn, small_vocab):
    labels = ["n02084071", "tiger", "golden retriever", "pickup truck", "sparrow", "canine", "wolf", "zzzz"]
    got = {m.label: (m.relation, names(wn, m.synsets)) for m in map_labels_to_vocabulary(labels, small_vocab)}
    assert got == {
        "n02084071": ("direct", ["dog.n.01"]),
        "tiger": ("direct", ["tiger.n.01"]),  # what first-sense labelling put in the vocabulary
        "golden retriever": ("hypernym", ["retriever.n.01"]),
        "pickup truck": ("hypernym", ["truck.n.01"]),
        "sparrow": ("hypernym", ["bird.n.01"]),
        "canine": ("hyponym", ["dog.n.01"]),  # via canine.n.02 after the tooth sense finds nothing
        "wolf": ("nearest", ["dog.n.01"]),  # not in the vocabulary: the most similar synset
        "zzzz": ("unmapped", []),
    }


def test_nearest_score_is_nltk_wup_and_threshold(wn, small_vocab):
    (wolf,) = map_labels_to_vocabulary(["wolf"], small_vocab)
    assert wolf.score == pytest.approx(wn.synset("wolf.n.01").wup_similarity(wn.synset("dog.n.01")))
    (strict,) = map_labels_to_vocabulary(["wolf"], small_vocab, min_similarity=0.99)
    assert (strict.relation, strict.synsets, strict.score) == ("unmapped", (), 0.0)


def test_direct_uses_every_sense_in_the_vocabulary(wn, small_vocab):
    both = [*small_vocab, synset_id(wn.synset("tiger.n.02"))]
    (tiger,) = map_labels_to_vocabulary(["tiger"], both)
    assert tiger.relation == "direct" and sorted(names(wn, tiger.synsets)) == ["tiger.n.01", "tiger.n.02"]


def test_mapping_is_deterministic(small_vocab):
    labels = ["wolf", "golden retriever", "lion", "minivan", "hawk"]
    first = map_labels_to_vocabulary(labels, small_vocab)
    assert map_labels_to_vocabulary(labels, list(reversed(small_vocab))) == first
    assert map_labels_to_vocabulary(labels, [*small_vocab, "junk", "n99999999"]) == first
    assert [m.label for m in first] == labels


def test_wup_matches_nltk(wn):
    rng = random.Random(0)
    lemmas = sorted(wn.all_lemma_names("n"))
    pairs = [
        (wn.synsets(rng.choice(lemmas), "n")[-1], wn.synsets(rng.choice(lemmas), "n")[0]) for _ in range(300)
    ]
    pairs.append((wn.synset("chef.n.01"), wn.synset("fireman.n.01")))  # nltk's min-depth oddity
    index = _SimilarityIndex([])
    for a, b in pairs:
        assert index.wup(a, b) == pytest.approx(a.wup_similarity(b), abs=1e-12)


def test_pruned_nearest_search_equals_scoring_everything(wn):
    rng = random.Random(1)
    lemmas = sorted(wn.all_lemma_names("n"))
    vocab = sorted({wn.synsets(n, "n")[0] for n in rng.sample(lemmas, 300)}, key=synset_id)
    index = _SimilarityIndex(vocab)
    for name in rng.sample(lemmas, 25):
        synset = wn.synsets(name, "n")[0]
        brute = max(vocab, key=lambda v: (index.wup(synset, v), [-ord(c) for c in synset_id(v)]))
        assert index.nearest(synset) == (index.wup(synset, brute), brute)
    assert _SimilarityIndex([]).nearest(wn.synset("dog.n.01")) is None
