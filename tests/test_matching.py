"""Allowlist matching: MetaCLIP semantics, Aho-Corasick == naive loop, totality, pickling, benchmark smoke."""

from __future__ import annotations

import pickle
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.matching import QueryMatcher, naive_match, spaced

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

ENTRIES = [
    "new", "york", "new york", "york city", "new york city", "cat", "cats", "at", "a", "a cat", "dog",
    "hot dog", "hot", "st. louis", "u.s.", "e.g.", "Dog", "DOG", "dog", "c++", "x-ray", "x", "ray", "?",
    "a, b", "  spaced \t entry ", "", "   ", "don't", "café", "cafe", "naïve", "Straße", "STRASSE", "东京",
    "ab", "ba", "aba", "bab", "ab ab", "ab ba ab", "b", "the the", "New York",
]  # fmt: skip
PIECES = [
    "yor",
    "ork",
    "ne",
    "ca",
    "og",
    "do",
    "abab",
    "catdog",
    "hotdog",
    "nyc",
    "louis",
    "st",
    "u",
    "s",
    "e",
    "g",
]
MARKS = [",", ".", ";", ":", "?", "!", "`", "'", '"', "(", ")", "-", "/", "&"]
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "", ", ", ". ", "\u00a0"]


def metaclip_substr_matching(text: str, metadata: list[str]) -> list[int]:
    """MetaCLIP's own matching (metaclip/substr_matching.py), restated as the independent reference."""
    spaced_text = f" {text} "
    for mark in [",", ".", ";", ":", "?", "!", "`"]:
        spaced_text = spaced_text.replace(mark, f" {mark} ")
    for char in ["\t", "\n", "\r"]:
        spaced_text = spaced_text.replace(char, " ")
    return [i for i, entry in enumerate(metadata) if f" {entry} " in spaced_text]


def random_text(rng: random.Random, vocabulary: list[str]) -> str:
    tokens = []
    for _ in range(rng.randint(0, 12)):
        roll = rng.random()
        if roll < 0.5:
            token = rng.choice(vocabulary)
        elif roll < 0.7:
            token = rng.choice(PIECES)
        else:
            token = rng.choice(MARKS)
        case = rng.random()
        token = token.upper() if case < 0.1 else token.title() if case < 0.2 else token
        tokens.append(token)
        tokens.append(rng.choice(SEPARATORS))
    return "".join(tokens)


def random_entries(rng: random.Random, n: int) -> list[str]:
    alphabet = ["ab", "ba", "a", "b", "aba", "cat", "dog", "new", "york"]
    out = []
    for _ in range(n):
        words = [rng.choice(alphabet) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
        out.append(" ".join(words))
    return out  # overlapping, nested and repeated entries


# ---------------------------------------------------------------- semantics


def test_spaced_form():
    assert spaced("Hello, World!") == " hello , world ! "
    assert spaced("Hello, World!", case_sensitive=True) == " Hello , World ! "
    assert spaced("  a\t\nb  ") == " a b "
    assert spaced("") == "  "


def test_word_boundaries_and_punctuation():
    matcher = QueryMatcher(["cat", "new york", "st. louis", "dog"])
    assert matcher.matched_entries("A cat, in New York.") == ["cat", "new york"]
    assert matcher.match("concatenate category bobcat") == []  # inside words: no match
    assert matcher.match("cats") == []
    assert matcher.matched_entries("Visit St. Louis!") == ["st. louis"]  # MetaCLIP never matches this entry
    assert matcher.match("new\n\nyork") == [1]  # whitespace runs collapse
    assert matcher.match("(dog)") == []  # only MetaCLIP's seven marks are split off


def test_case_modes():
    entries = ["dog", "Dog", "New York"]
    insensitive = QueryMatcher(entries)
    sensitive = QueryMatcher(entries, case_sensitive=True)
    assert insensitive.match("DOG in new york") == [0, 1, 2]
    assert sensitive.match("DOG in new york") == []
    assert sensitive.match("Dog in New York") == [1, 2]
    assert sensitive.case_sensitive and not insensitive.case_sensitive


def test_equals_metaclip_for_entries_without_marks():
    rng = random.Random(7)
    metadata = [e for e in ENTRIES + random_entries(rng, 200) if e.strip() and not set(e) & set(",.;:?!`")]
    metadata = [" ".join(e.split()) for e in metadata]  # MetaCLIP's entries are single-spaced
    matcher = QueryMatcher(metadata, case_sensitive=True)
    vocabulary = metadata + PIECES
    for _ in range(1500):
        text = " ".join(random_text(rng, vocabulary).split(" "))
        text = " ".join(text.split())  # no whitespace runs: the one place the semantics differ
        assert matcher.match(text) == metaclip_substr_matching(text, metadata), text


@pytest.mark.parametrize("case_sensitive", [False, True])
def test_automaton_equals_naive_loop(case_sensitive):
    rng = random.Random(11 + case_sensitive)
    entries = ENTRIES + random_entries(rng, 150) + ENTRIES[:10]  # duplicates get several ids
    matcher = QueryMatcher(entries, case_sensitive=case_sensitive)
    vocabulary = [e for e in entries if e.strip()] + ["nyc", "ny"]
    matches = 0
    for _ in range(2500):
        text = random_text(rng, vocabulary)
        expected = naive_match(entries, text, case_sensitive)
        assert matcher.match(text) == expected, text
        matches += bool(expected)
    assert matches > 1500  # the texts exercise matches, not only misses


def test_duplicate_entries_all_match():
    matcher = QueryMatcher(["dog", "cat", "dog", "Dog"])
    assert matcher.match("a dog") == [0, 2, 3]
    assert QueryMatcher(["dog", "cat", "dog", "Dog"], case_sensitive=True).match("a dog") == [0, 2]


# ---------------------------------------------------------------- totality


def test_empty_and_whitespace_entries_never_match():
    matcher = QueryMatcher(["", "  ", "\t", "dog"])
    assert matcher.match("a  dog  ") == [3]
    assert naive_match(["", "  ", "\t", "dog"], "a  dog  ") == [3]


@pytest.mark.parametrize("value", [None, "", "   ", 5, 3.5, object(), ["dog"]])
def test_match_non_text_and_empty(value):
    matcher = QueryMatcher(["dog"])
    assert matcher.match(value) == []
    assert naive_match(["dog"], value) == []


def test_match_bytes_and_undecodable_bytes():
    matcher = QueryMatcher(["café", "dog"])
    assert matcher.match("café dog".encode()) == [0, 1]
    assert matcher.match("café dog".encode("cp1252")) == [0, 1]  # invalid UTF-8: read as Windows-1252
    assert matcher.match(b"\x81\xff dog") == [1]


def test_match_one_megabyte_text():
    matcher = QueryMatcher(["word", "other", "word word"])
    text = "word " * 200_000 + "other"
    assert matcher.match(text) == [0, 1, 2]


def test_matcher_with_non_string_entries_is_total():
    matcher = QueryMatcher(["dog", None, 3])  # type: ignore[list-item]
    assert matcher.match("dog 3") == [0]


# ---------------------------------------------------------------- pickling


def test_pickle_ships_entries_only_and_rebuilds_lazily():
    entries = [f"entry {i}" for i in range(2000)] + ["dog"]
    matcher = QueryMatcher(entries).build()
    blob = pickle.dumps(matcher)
    assert len(blob) < 60_000  # the automaton itself does not travel
    clone = pickle.loads(blob)
    assert clone._automaton is None
    assert clone.entries == entries and not clone.case_sensitive
    assert clone.match("a dog and entry 7.") == matcher.match("a dog and entry 7.") == [7, 2000]
    sensitive = pickle.loads(pickle.dumps(QueryMatcher(["Dog"], case_sensitive=True)))
    assert sensitive.match("dog") == [] and sensitive.match("Dog") == [0]
    assert len(sensitive) == 1


# ---------------------------------------------------------------- benchmark smoke


def test_benchmark_runs_quickly(capsys):
    import bench_matching

    code = bench_matching.main(
        ["--quick", "--entries", "3000", "--captions", "300", "--naive-captions", "5", "--repeat", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "parity with naive loop: ok" in out
    assert "captions/s" in out and "normalize + check_caption" in out


def test_metaclip_semantics_equals_metaclip_exactly_quirks_included():
    """``semantics="metaclip"``: every entry and text, marks, whitespace runs and empty entries too."""
    rng = random.Random(13)
    entries = ENTRIES + random_entries(rng, 150) + ENTRIES[:10]
    matcher = QueryMatcher(entries, semantics="metaclip")
    vocabulary = [e for e in entries if e.strip()] + ["nyc", "  ", "\t", "\n", "a  b"]
    for _ in range(2500):
        text = random_text(rng, vocabulary)
        assert matcher.match(text) == metaclip_substr_matching(text, entries), repr(text)


def test_metaclip_semantics_quirks_by_name():
    matcher = QueryMatcher(
        ["st. louis", "big dog", "Dog", "", "dog"], case_sensitive=False, semantics="metaclip"
    )
    assert matcher.case_sensitive  # MetaCLIP is case-sensitive whatever the flag says
    assert matcher.matched_entries("a big dog") == ["big dog", "dog"]
    assert matcher.matched_entries("a big  dog") == ["", "dog"]  # runs are not collapsed: "" matches "  "
    assert matcher.matched_entries("st. louis") == [""]  # an entry with a mark never matches
    assert matcher.matched_entries("Dog\tdays") == ["Dog"]
    assert QueryMatcher(["st. louis"]).matched_entries("st. louis") == ["st. louis"]  # the project's spacing
    copy = pickle.loads(pickle.dumps(matcher))
    assert copy.semantics == "metaclip" and copy.match("a big  dog") == matcher.match("a big  dog")
    assert QueryMatcher([]).match("a") == [] == QueryMatcher([""], semantics="words").match("a  b")
    with pytest.raises(ValueError, match="semantics must be one of"):
        QueryMatcher(["x"], semantics="regex")


@given(
    st.lists(st.text(alphabet="ab ,.\t\n", max_size=6), max_size=8),
    st.text(alphabet="abAB ,.;\t\n\r`", max_size=30),
)
@settings(max_examples=300, deadline=None)
def test_metaclip_semantics_property(entries, text):
    assert QueryMatcher(entries, semantics="metaclip").match(text) == metaclip_substr_matching(text, entries)
