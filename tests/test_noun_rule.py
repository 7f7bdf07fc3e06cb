"""COYO's "text must contain a noun" rule (filters/noun_rule.py): named captions and arbitrary text."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.noun_rule import TEXT_NO_NOUN, NounCheck, has_noun


@pytest.fixture(scope="module", params=["pattern", "auto"])
def check(request):
    return NounCheck(request.param).build()


@pytest.mark.parametrize(
    ("caption", "verdict"),
    [
        ("a red ball on the grass", None),
        ("Golden Retriever Puppy", None),  # Title Case is lower-cased first: nouns, not names
        ("CHEAP PRICES HERE", None),
        ("very nice and so beautiful", TEXT_NO_NOUN),
        ("running fast", TEXT_NO_NOUN),
        ("2019 !!!", TEXT_NO_NOUN),
        ("", TEXT_NO_NOUN),
    ],
)
def test_named_captions(check, caption, verdict):
    assert check(caption) == verdict


def test_punctuation_tagged_as_a_noun_does_not_count():
    assert not has_noun([("--", "NN"), ("!", ".")]) and has_noun([("dog", "NN")])


def test_the_check_travels_to_workers_without_its_tagger(check):
    copy = pickle.loads(pickle.dumps(check))
    assert copy.tagger == check.tagger and copy("a dog") is None


TAGGERS = {name: NounCheck(name).build() for name in ("pattern", "auto")}  # auto: what the job pins


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_any_text_gets_a_verdict(text):
    assert all(check(text) in (None, TEXT_NO_NOUN) for check in TAGGERS.values())
