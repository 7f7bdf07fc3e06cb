"""Allowlist files (MetaCLIP JSON list, one per line) and the CLIP-WIT-style builder."""

from __future__ import annotations

import json
import random

import pytest

from filters.allowlist import build_wit_allowlist, load_allowlist, save_allowlist, wordnet_lemma_names

CORPUS = ["new york city"] * 40 + ["the dog"] * 60 + ["the cat"] * 60 + ["a dog"] * 40
TITLES = ["New York", "Hong Kong", "hong  kong", "The", ""]

# ---------------------------------------------------------------- files


def test_load_metaclip_json(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(["dog", "New York", "café", "st. louis"]), encoding="utf-8")
    assert load_allowlist(path) == ["dog", "New York", "café", "st. louis"]


def test_load_one_per_line(tmp_path):
    path = tmp_path / "queries.txt"
    path.write_bytes("\ufeffdog\r\n\r\n  New York  \ncafé\n".encode())
    assert load_allowlist(str(path)) == ["dog", "New York", "café"]


def test_save_then_load_round_trips(tmp_path):
    entries = ["dog", 'quote " and \\ backslash', "東京", "new york"]
    path = tmp_path / "out.json"
    save_allowlist(entries, path)
    assert json.loads(path.read_text(encoding="utf-8")) == entries
    assert load_allowlist(path) == entries


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"entries": ["dog"]}', "JSON object; expected a JSON list of strings"),
        ('["dog", 3]', "entry 1 is int 3, expected a string"),
        ('["dog", null]', "entry 1 is NoneType"),
        ('["dog",', "invalid JSON at line 1"),
        ("[]", "allowlist is empty"),
        ("\n  \n", "allowlist is empty"),
        ('"dog"', None),  # a JSON string is read as one line: fine, not an error
    ],
)
def test_load_rejects_wrong_formats(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    if message is None:
        assert load_allowlist(path) == ['"dog"']
    else:
        with pytest.raises(ValueError, match=message):
            load_allowlist(path)


def test_load_reports_missing_and_undecodable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="allowlist not found"):
        load_allowlist(tmp_path / "nope.json")
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_allowlist(path)


# ---------------------------------------------------------------- builder


def test_builder_order_thresholds_and_dedup():
    entries = build_wit_allowlist(CORPUS, wordnet=False, min_unigram_count=100, min_bigram_count=30,
                                  max_bigrams=3, titles=TITLES)  # fmt: skip
    # unigrams >= 100 by count; bigrams by PMI (new york = york city = log2(11) > a dog = log2(4.4));
    # titles last, duplicates (any case, any spacing) dropped.
    assert entries == ["the", "dog", "new york", "york city", "a dog", "Hong Kong"]


def test_builder_pmi_floor_min_count_and_cap():
    bigrams = build_wit_allowlist(CORPUS, wordnet=False, min_unigram_count=1000, min_bigram_count=30)
    assert bigrams == ["new york", "york city", "a dog", "the cat", "the dog"]
    assert build_wit_allowlist(CORPUS, wordnet=False, min_unigram_count=1000, min_pmi=2.0) == [
        "new york", "york city", "a dog",
    ]  # fmt: skip
    assert build_wit_allowlist(CORPUS, wordnet=False, min_unigram_count=1000, min_bigram_count=50) == [
        "the cat", "the dog",
    ]  # fmt: skip
    assert build_wit_allowlist(CORPUS, wordnet=False, titles=TITLES, max_size=2) == ["the", "dog"]


def test_builder_is_deterministic_under_input_order():
    shuffled = list(CORPUS)
    random.Random(3).shuffle(shuffled)
    first = build_wit_allowlist(CORPUS, wordnet=False, min_unigram_count=40, min_bigram_count=10)
    assert build_wit_allowlist(shuffled, wordnet=False, min_unigram_count=40, min_bigram_count=10) == first
    assert first[:7] == ["the", "dog", "cat", "a", "city", "new", "york"]


def test_builder_is_total_over_odd_texts():
    texts = [None, b"\xff\xfe", 12, "", "&lt;b&gt;dog&lt;/b&gt;", "x" * 1_000_000] + ["dog"] * 5
    assert build_wit_allowlist(texts, wordnet=False, min_unigram_count=5) == ["dog"]
    with pytest.raises(ValueError, match="max_size"):
        build_wit_allowlist([], wordnet=False, max_size=0)


def test_builder_with_wordnet_puts_lemmas_first():
    lemmas = wordnet_lemma_names()
    assert len(lemmas) > 140_000
    assert lemmas == sorted(lemmas) and not any("_" in name for name in lemmas)
    assert {"dog", "hot dog", "new york", "st. louis"} <= set(lemmas)
    entries = build_wit_allowlist(CORPUS, min_unigram_count=100, min_bigram_count=30, titles=["Zyxwv Corp"])
    assert entries[: len(lemmas)] == lemmas  # WordNet ids do not depend on the corpus
    # Then the corpus parts without what WordNet already has ("dog", "new york").
    assert entries[len(lemmas) :] == ["the", "york city", "a dog", "the cat", "the dog", "Zyxwv Corp"]
    assert len(entries) == len({e.casefold() for e in entries})
    assert build_wit_allowlist([], max_size=10) == lemmas[:10]
