"""Synset labels a person would agree with: the context sense rule, compounds looked up whole,
English-only labelling, the tag repairs, and the labelled caption-noun set they are measured on."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

from filters.pos_tagging import lower_sentence_starts, repair_noun_tags
from filters.synsets import (
    LabelerConfig,
    SynsetLabeler,
    compound_forms,
    load_wordnet,
    ranked_senses,
    synset_id,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from sense_gold import GOLD_TSV, check_gold, evaluate, load_gold


@pytest.fixture(scope="module")
def wn():
    return load_wordnet()


@pytest.fixture(scope="module")
def labelers(wn):
    return {sense: SynsetLabeler(sense=sense).load() for sense in ("first", "visual", "context")}


def names(wn, labeler, caption):
    return {wn.synset_from_pos_and_offset("n", int(i[1:])).name() for i in labeler.labels(caption)}


@pytest.mark.parametrize(
    ("caption", "context_sense", "visual_sense"),
    [
        (
            "Wireless mouse and keyboard on a desk",
            "mouse.n.04",
            "mouse.n.01",
        ),  # the device, by its neighbours
        ("A plate of pasta with tomato sauce", "plate.n.04", "home_plate.n.01"),  # the dish
        ("Crane standing in the marsh at dawn", "crane.n.05", "crane.n.04"),  # the bird
        ("Red kite bird of prey perched on a branch", "kite.n.04", "kite.n.03"),  # the hawk
    ],
)
def test_context_picks_the_sense_the_other_words_point_to(wn, labelers, caption, context_sense, visual_sense):
    assert context_sense in names(wn, labelers["context"], caption)
    assert visual_sense in names(wn, labelers["visual"], caption)


@pytest.mark.parametrize(
    ("caption", "sense"),
    [
        ("A small grey mouse in the kitchen", "mouse.n.01"),
        ("Kids flying a kite on the beach", "kite.n.03"),
        ("A crane lifting steel beams at the construction site", "crane.n.04"),
        ("Batter standing at home plate", "home_plate.n.01"),
        ("A bat hanging upside down in a cave", "bat.n.01"),
    ],
)
def test_context_keeps_the_usual_sense_when_nothing_points_away(wn, labelers, caption, sense):
    assert sense in names(wn, labelers["context"], caption)


@pytest.mark.parametrize(
    ("caption", "compound"),
    [
        (
            "Colorful hot air balloons in the morning sky",
            "hot-air_balloon.n.01",
        ),  # spaces, WordNet has a hyphen
        ("Hot-air balloon over Cappadocia at sunrise", "hot-air_balloon.n.01"),
        ("Sea shells on the sand", "seashell.n.01"),  # WordNet writes it closed
        ("Close-up of a jaguar face", "closeup.n.01"),  # one hyphenated token
        ("Red kite bird of prey perched on a branch", "bird_of_prey.n.01"),  # X of Y
    ],
)
def test_compounds_are_looked_up_whole(wn, labelers, caption, compound):
    for labeler in labelers.values():
        found = names(wn, labeler, caption)
        assert compound in found
    assert "hot_air.n.01" not in names(wn, labelers["first"], "Colorful hot air balloons in the morning sky")
    assert not {"prey.n.01", "prey.n.02"} & names(
        wn, labelers["first"], "Red kite bird of prey perched on a branch"
    )


def test_abstract_of_compounds_are_refused(wn, labelers):
    # "piece of cake" is an easy task in WordNet (noun.act); a photo caption means a piece and a cake.
    found = names(wn, labelers["visual"], "A piece of cake on a plate")
    assert "piece_of_cake.n.01" not in found and "piece.n.01" in found


def test_compound_forms_order():
    assert compound_forms(["hot", "air", "balloon"])[:2] == ["hot_air_balloon", "hot_air-balloon"]
    assert set(compound_forms(["sea", "shell"])) == {"sea_shell", "sea-shell", "seashell"}
    assert compound_forms(["dog"]) == ["dog"]


@pytest.mark.parametrize(
    "caption",
    [
        "Un chat noir dort sur le canapé du salon",  # "chat" would be a bird
        "Viaje al mar con la familia durante las vacaciones",  # "al" would be aluminium
        "Der Hund spielt im Garten mit einem roten Ball",
    ],
)
def test_only_english_captions_are_labelled(wn, labelers, caption):
    for labeler in labelers.values():
        assert labeler.labels(caption) == []
    everything = SynsetLabeler(languages=None).load()
    assert everything.labels(caption) != []  # the gate, not the tagger, is what stops them


def test_other_languages_can_be_allowed(wn):
    french_too = SynsetLabeler(LabelerConfig(languages=("en", "fr"))).load()
    assert french_too.labels("Un chat noir dort sur le canapé du salon") != []
    assert french_too.labels("a dog on the beach") == sorted(
        synset_id(wn.synset(n)) for n in ("dog.n.01", "beach.n.01")
    )


def test_sentence_start_capitals_and_tag_repairs(wn, labelers):
    assert (
        lower_sentence_starts("Red kite. Wireless mouse! NASA rocket")
        == "red kite. wireless mouse! NASA rocket"
    )
    # A capitalised adjective was a proper noun and labelled (red.n.01, radio_receiver.n.01).
    assert names(wn, labelers["first"], "Red kite soaring over the hills") == {"kite.n.01", "hill.n.01"}
    assert "fair.n.01" not in names(wn, labelers["first"], "Merry-go-round at the county fair")
    assert {"carnival.n.03", "county.n.01"} <= names(
        wn, labelers["first"], "Merry-go-round at the county fair"
    )
    assert {"ice_bear.n.01", "ice.n.01"} == names(wn, labelers["first"], "Polar bear on the ice")
    assert "stopping_point.n.01" not in names(
        wn, labelers["first"], "Close up of a dog"
    )  # "close" stays a verb


def test_repair_noun_tags_rules():
    def is_noun(word):
        return word in {"fair", "bear", "sink", "t-shirts", "red"}

    def other_pos(word):
        return word != "t-shirts"

    tagged = [("at", "IN"), ("the", "DT"), ("fair", "JJ")]
    assert repair_noun_tags(tagged, is_noun, other_pos)[2] == ("fair", "NN")
    assert repair_noun_tags([("polar", "JJ"), ("bear", "VB")], is_noun, other_pos)[1] == ("bear", "NN")
    assert repair_noun_tags([("toilet", "NN"), ("and", "CC"), ("sink", "VB")], is_noun, other_pos)[2] == (
        "sink",
        "NN",
    )
    assert repair_noun_tags([("matching", "VBG"), ("t-shirts", "JJ")], is_noun, other_pos)[1] == (
        "t-shirts",
        "NNS",
    )
    keep = [("a", "DT"), ("red", "JJ"), ("and", "CC"), ("white", "JJ"), ("boat", "NN")]
    assert repair_noun_tags(keep, is_noun, other_pos) == keep  # a colour before "and" stays an adjective
    dogs = [("dogs", "NNS"), ("bear", "VBP"), ("it", "PRP")]
    assert repair_noun_tags(dogs, is_noun, other_pos) == dogs  # a verb after a noun stays a verb


def test_context_mode_is_picklable_and_validated():
    labeler = SynsetLabeler(sense="context")
    clone = pickle.loads(pickle.dumps(labeler))
    assert clone.config.sense == "context" and clone._context is None
    assert ranked_senses("tiger", "context")[0].name() == "tiger.n.02"  # out of a caption: as visual
    with pytest.raises(ValueError, match="context"):
        SynsetLabeler(sense="contextual")


def test_labelled_set_is_well_formed(wn):
    gold = load_gold(GOLD_TSV)
    check_gold(gold, wn)
    english = [row for row in gold if row.language == "en"]
    assert sum(len(row.nouns) for row in english) >= 300
    assert sum(row.language != "en" for row in gold) >= 20 and all(
        not row.nouns for row in gold if row.language != "en"
    )
    assert {"tiger", "kite", "plate", "mouse", "bat", "bank", "crane", "jaguar", "apple"} <= {
        noun.surface.lower() for row in english for noun in row.nouns
    }
    assert 0.3 < sum(row.held_out for row in gold) / len(gold) < 0.36


def test_context_beats_visual_beats_first_on_the_labelled_nouns(wn, labelers):
    gold = load_gold(GOLD_TSV)
    scores = {sense: evaluate(labeler.labels, gold, wn)["all"] for sense, labeler in labelers.items()}
    accuracy = {sense: score.right / score.nouns for sense, score in scores.items()}
    assert accuracy["context"] > accuracy["visual"] > accuracy["first"]
    for score in scores.values():
        assert score.precise / score.labels > 0.95  # labels are senses of nouns a person reads there
        assert score.non_english_labels <= 3
