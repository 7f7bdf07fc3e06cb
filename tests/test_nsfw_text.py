"""The text-side NSFW rule: the shipped explicit-term list, whole-word matching, reason and detail."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.decision import KEPT, Finding
from filters.junk import phrase_key
from filters.nsfw_text import TEXT_NSFW, ExplicitTermMatcher, check_text_nsfw, load_terms, read_terms

PROPERTY = settings(max_examples=300, derandomize=True, database=None, deadline=None)


def test_shipped_list_loads_from_the_package():
    terms = load_terms()
    assert 80 <= len(terms) <= 200  # a small list, as COYO's
    assert terms == sorted(set(terms)) and all(t == phrase_key(t) for t in terms)
    assert {"porn", "xxx", "nsfw", "naked women"} <= set(terms)
    # Mostly innocent in alt-text, so left out (the data file says why).
    assert not {"nude", "naked", "sex", "sexy", "tits", "cock", "escort"} & set(terms)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("Hot PORN-star video", "porn, porn star"),
        ("#NSFW pic of the day", "nsfw"),
        ("naked women on the beach", "naked women"),
        ("XXX movies free", "xxx"),
        ("Amateur webcam sex chat", "sex chat, webcam sex"),
    ],
)
def test_explicit_alt_texts_are_dropped_with_the_terms(text, detail):
    assert check_text_nsfw(text) == Finding(TEXT_NSFW, detail)
    assert TEXT_NSFW == "text_nsfw"


@pytest.mark.parametrize(
    "text",
    [
        "Sussex countryside in spring",  # "sex" inside a word
        "Essex county cricket ground",
        "Nude heels for summer",  # a colour
        "Naked cake with fresh berries",
        "Blue tits at the bird feeder",
        "A cocktail at sunset",
        "Analysis of the results",
        "Scunthorpe United football club",
        "XXXL hoodie in black",
        "",
        None,
        42,
    ],
)
def test_innocent_texts_are_kept(text):
    assert check_text_nsfw(text) == KEPT == Finding(None, "")


def test_custom_list_and_comments(tmp_path):
    path = tmp_path / "terms.txt"
    path.write_text("# a comment\n\nred  Panda\nkiwi # trailing comment\n", encoding="utf-8")
    assert load_terms(path) == ["kiwi", "red panda"]
    matcher = ExplicitTermMatcher(["red panda", "kiwi"]).build()
    assert matcher.find("A RED-PANDA eating a kiwi.") == ["kiwi", "red panda"]
    assert check_text_nsfw("a red panda", matcher) == Finding(TEXT_NSFW, "red panda")
    assert read_terms(["  ", "#", "A.B"]) == ["a b"]


def test_matcher_pickles_its_terms_only():
    matcher = ExplicitTermMatcher(["porn"]).build()
    clone = pickle.loads(pickle.dumps(matcher))
    assert clone.terms == ["porn"] and clone.find("porn") == ["porn"]


def test_huge_text_is_bounded():
    assert check_text_nsfw("word " * 500_000 + "porn").reason is None  # past the 64 kB cut
    assert check_text_nsfw("porn " + "word " * 500_000).detail == "porn"


_INNOCENT = st.sampled_from(
    ["dog", "beach", "sunset", "red", "dress", "cake", "Sussex", "essex", "nude heels"]
)


@PROPERTY
@given(
    st.lists(_INNOCENT, max_size=8), st.sampled_from(load_terms()), st.sampled_from([" ", "-", ", ", "! "])
)
def test_a_term_among_innocent_words_is_found(words, term, separator):
    text = separator.join([*words, term.upper() if len(words) % 2 else term, *words])
    finding = check_text_nsfw(text)
    assert finding.reason == TEXT_NSFW and term in finding.detail.split(", ")


@PROPERTY
@given(st.text(max_size=200))
def test_matches_are_whole_words_and_never_raise(text):
    finding = check_text_nsfw(text)
    key = f" {phrase_key(text)} "
    assert finding.reason in (None, TEXT_NSFW)
    for term in filter(None, finding.detail.split(", ")):
        assert f" {term} " in key
