"""Caption → WordNet synset ids: exact ids, nouns, compounds, senses, tagger, totality."""

from __future__ import annotations

import pickle
import random
import re
import socket

import pytest

from filters.synsets import (
    SynsetLabeler,
    load_tagger,
    load_wordnet,
    normalise_case,
    perceptron_data_installed,
    perceptron_tag_fn,
    ranked_senses,
    synset_from_id,
    synset_id,
)
from tests.bench_fixtures import load_benchmark

DOG = "n02084071"  # dog.n.01, ImageNet's id for "dog"
ID = re.compile(r"^n\d{8}$")


@pytest.fixture(scope="module")
def wn():
    return load_wordnet()


@pytest.fixture(scope="module")
def first(wn):
    return SynsetLabeler().load()


@pytest.fixture(scope="module")
def visual(wn):
    return SynsetLabeler(sense="visual").load()


def ids(wn, *names: str) -> set[str]:
    return {synset_id(wn.synset(n)) for n in names}


def test_dog_is_imagenet_id(wn, first):
    assert synset_id(wn.synset("dog.n.01")) == DOG
    assert synset_from_id(DOG, wn).name() == "dog.n.01"
    assert first.labels("dog") == [DOG]
    assert first.labels("dogs") == [DOG]
    assert first.labels("Two dogs playing in the park.") == sorted(ids(wn, "dog.n.01", "park.n.01"))


@pytest.mark.parametrize("bad", ["n2084071", "x02084071", "n99999999", "dog", None, 2084071])
def test_bad_synset_ids(wn, bad):
    assert synset_from_id(bad, wn) is None


def test_nouns_only_first_sense(wn, first):
    labels = first.labels("A red ball on the grass")
    assert labels == sorted(ids(wn, "ball.n.01", "grass.n.01"))
    assert "n02778669" in labels  # ball.n.01, its first noun sense
    assert first.labels("They quickly ran away") == []  # no nouns


def test_capitals_at_sentence_start_and_title_case(wn, first):
    assert ids(wn, "dog.n.01", "beach.n.01") == set(first.labels("Dog on a beach"))
    assert set(first.labels("Red Ball On Green Grass")) >= ids(wn, "ball.n.01", "grass.n.01")
    assert set(first.labels("RED BALL ON GREEN GRASS")) >= ids(wn, "ball.n.01", "grass.n.01")
    assert normalise_case("Red Ball on Green Grass") == "red ball on green grass"
    assert normalise_case("New York skyline") == "New York skyline"  # mixed case keeps its proper nouns
    assert normalise_case("Dog") == "Dog"


def test_proper_nouns_dropped_unless_asked(wn, first):
    assert first.labels("My trip to Paris with John") == sorted(ids(wn, "trip.n.01"))
    with_proper = SynsetLabeler(proper_nouns=True).load()
    assert set(with_proper.labels("My trip to Paris with John")) >= ids(wn, "paris.n.01")


def test_compounds_are_one_synset(wn, first, visual):
    assert first.labels("a teddy bear on a bed") == sorted(ids(wn, "teddy.n.01", "bed.n.01"))
    assert first.labels("fire truck parked on the street") == sorted(
        ids(wn, "fire_engine.n.01", "street.n.01")
    )
    hot_dogs = visual.labels("hot dogs and ice cream")
    assert hot_dogs == sorted(ids(wn, "hotdog.n.02", "ice_cream.n.01"))
    assert DOG not in hot_dogs
    assert visual.labels("Close up of a Golden Retriever puppy") == sorted(
        ids(wn, "golden_retriever.n.01", "puppy.n.01")
    )
    no_compounds = SynsetLabeler(compounds=False).load()
    assert DOG in no_compounds.labels("hot dogs and ice cream")


def test_compounds_refused_when_abstract_or_a_name(wn, first):
    assert first.labels("A man in hot water") == sorted(ids(wn, "man.n.01", "water.n.01"))
    skyline = first.labels("New York skyline")
    assert ids(wn, "skyline.n.01") <= set(skyline)
    assert not ids(wn, "new_york.n.01") & set(skyline)


def test_first_sense_is_catlip_rule_visual_prefers_concrete(wn, first, visual):
    assert first.labels("a tiger") == sorted(ids(wn, "tiger.n.01"))  # "a fierce person"
    assert visual.labels("a tiger") == sorted(ids(wn, "tiger.n.02"))
    assert visual.labels("a kite over the beach") == sorted(ids(wn, "kite.n.03", "beach.n.01"))
    assert [s.name() for s in ranked_senses("kite", "visual")][:2] == ["kite.n.03", "kite.n.01"]
    for word in ("dog", "man", "people", "water", "wave"):  # frequent senses survive the prior
        assert ranked_senses(word, "visual")[0] == ranked_senses(word, "first")[0]
    assert ranked_senses("paris", "visual")[0].name() == "paris.n.01"  # not the plant genus
    with pytest.raises(ValueError, match="sense"):
        SynsetLabeler(sense="frequency")


def test_tagger_works_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    labeler = SynsetLabeler(tagger="pattern").load()
    assert labeler.tagger_name == "textblob-pattern"
    assert labeler.labels("a dog on the grass") == [DOG, "n12102133"]  # grass.n.01
    name, tag = load_tagger("pattern")
    assert name == "textblob-pattern"
    assert tag("a dog runs") == [("a", "DT"), ("dog", "NN"), ("runs", "VBZ")]


def test_auto_tagger_choice_is_reported(first):
    expected = "nltk-perceptron" if perceptron_data_installed() else "textblob-pattern"
    assert first.tagger_name == expected
    if not perceptron_data_installed():
        with pytest.raises(RuntimeError, match="tagger='pattern'"):
            load_tagger("perceptron")
    with pytest.raises(ValueError):
        load_tagger("spacy")


def test_perceptron_path_tokenizes_sentences():
    from nltk.tag.perceptron import PerceptronTagger

    toy = PerceptronTagger(load=False)  # trained here: the real model's data is not on this machine
    toy.train([[("a", "DT"), ("dog", "NN"), ("runs", "VBZ"), (".", ".")]] * 5, nr_iter=2)
    tagged = perceptron_tag_fn(toy)("A dog runs. A dog!")
    assert [w for w, _ in tagged] == ["A", "dog", "runs", ".", "A", "dog", "!"]
    assert dict(tagged)["dog"] == "NN"


@pytest.mark.parametrize("bad", [None, "", "   \n\t", 5, 3.5, b"a dog", ["dog"], {"dog": 1}, object()])
def test_not_text_gives_nothing(first, bad):
    assert first.labels(bad) == []


def test_huge_text_is_bounded(first):
    assert first.labels("dog " * 250_000) == []  # 1 MB: not a caption, and no tagging work
    assert SynsetLabeler(max_chars=10).load().labels("a dog and a cat") == []


def test_random_text_never_raises_and_is_well_formed(first, visual):
    rng = random.Random(0)
    alphabet = "abcdefgh ABC.,;:!?/\\'\"-_()[]<>@#&*~|\t\n\x00\u00e9\u4e2d\u0301\u200b\ufeff\U0001f600"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for labeler in (first, visual):
            labels = labeler.labels(text)
            assert labels == sorted(set(labels)) and all(ID.match(x) for x in labels)


def test_deterministic_and_picklable(first):
    captions = ["A dog and two cats on a red sofa.", "Teddy bears!", "hot dogs at the fire station"]
    fresh = SynsetLabeler()
    assert [fresh.labels(c) for c in captions] == [first.labels(c) for c in captions]
    clone = pickle.loads(pickle.dumps(first))
    assert clone.tagger_name is None  # only the config travels; the worker loads in setup()
    assert [clone.labels(c) for c in captions] == [first.labels(c) for c in captions]


def test_benchmark_quick_smoke(capsys, first):
    bench = load_benchmark("bench_synsets")
    bench.check_gold()
    right_first, _ = bench.sense_accuracy(bench.SENSE_GOLD, "first")
    right_visual, _ = bench.sense_accuracy(bench.SENSE_GOLD, "visual")
    assert right_visual > right_first
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "tokenize+tag only (baseline)" in out and "warm caches" in out and "sense accuracy" in out
