"""Caption normalisation, ALIGN's alt-text rules and the rare-token table."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest

from filters.junk import is_dimensions, is_filename, is_generic, is_url
from filters.rare_tokens import (
    TEXT_RARE_TOKENS,
    TokenFrequencyTable,
    check_rare_tokens,
    count_ngrams,
    text_ngrams,
)
from filters.text import (
    _INVISIBLE,
    MAX_INPUT_CHARS,
    TEXT_SHARED_BY_MANY_IMAGES,
    TextRules,
    check_alt_text_shared,
    check_caption,
    normalize_text,
    words,
)

ONE_MB = "word " * 200_000

# ---------------------------------------------------------------- normalize_text


@pytest.mark.parametrize("value", [None, 42, 3.5, float("nan"), [], {"a": 1}, object(), ""])
def test_normalize_non_text_gives_empty_string(value):
    assert normalize_text(value) == ""


def test_normalize_decodes_bytes():
    assert normalize_text("café au lait".encode()) == "café au lait"
    assert normalize_text(bytearray(b"a  dog")) == "a dog"
    assert normalize_text(memoryview(b"a cat")) == "a cat"


def test_normalize_reads_invalid_utf8_as_windows_1252():
    assert normalize_text("café crème".encode("cp1252")) == "café crème"


def test_normalize_never_raises_on_undecodable_bytes():
    # 0x81 and 0x8d are undefined in Windows-1252 too: they are replaced, then dropped.
    assert normalize_text(b"\x81\x8d\xff\xfe dog") == "ÿþ dog"
    assert normalize_text(bytes(range(256))) == normalize_text(bytes(range(256)))


def test_normalize_bounds_huge_input():
    out = normalize_text(ONE_MB)
    assert 0 < len(out) <= MAX_INPUT_CHARS
    assert normalize_text(ONE_MB.encode()) == out
    assert normalize_text("<!--" * 250_000) == "<!--" * (MAX_INPUT_CHARS // 4)  # unclosed comments
    assert normalize_text("<a " * 300_000).startswith("<a <a")  # unclosed tags
    assert normalize_text("&amp;" * 300_000) == "&" * (MAX_INPUT_CHARS // 5) + "&"


def test_normalize_huge_bytes_cut_inside_a_character_stay_utf8():
    out = normalize_text(("€ " * 300_000).encode())  # 3-byte characters: the byte cut splits one
    assert out.startswith("€ € €") and "â" not in out
    assert len(out) <= MAX_INPUT_CHARS


def test_normalize_html_entities_and_tags():
    assert normalize_text("Tom &amp; Jerry") == "Tom & Jerry"
    assert normalize_text("Tom &amp;amp; Jerry") == "Tom & Jerry"  # escaped twice
    assert normalize_text("&lt;b&gt;Bold&lt;/b&gt; dog") == "Bold dog"
    assert normalize_text("red<br/>car <!-- x --> here") == "red car here"
    assert normalize_text("1 &lt; 2 and 3 > 2") == "1 < 2 and 3 > 2"  # not a tag


def test_normalize_percent_decoding_only_when_clearly_encoded():
    assert normalize_text("red%20dress%20for%20women") == "red dress for women"
    assert normalize_text("C%2B%2B+programming+book") == "C++ programming book"
    assert normalize_text("50% off today") == "50% off today"
    assert normalize_text("100%") == "100%"
    assert normalize_text("bad%FFescape") == "bad%FFescape"  # not valid UTF-8 once decoded
    assert normalize_text("https://x.org/my%20cat.jpg") == "https://x.org/my%20cat.jpg"


def test_normalize_unicode_and_whitespace():
    assert normalize_text("Cafe\u0301") == "Café"  # NFC
    assert normalize_text("a\u200bb\x00c\u202e\ufeff d") == "abc d"
    assert normalize_text("lone \ud800 surrogate") == "lone surrogate"
    assert normalize_text("  tab\there\n\nnew\u00a0line\u3000x  ") == "tab here new line x"
    assert normalize_text("Keep Case") == "Keep Case"


def test_invisible_class_matches_unicode_categories():
    everything = "".join(chr(cp) for cp in range(sys.maxunicode + 1))
    removed = set(_INVISIBLE.findall(everything))
    expected = {
        ch for ch in everything if unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} and not ch.isspace()
    } | {"\ufffd"}
    assert expected <= removed
    assert all(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in removed - {"\ufffd"})


# ---------------------------------------------------------------- words


def test_words_lowercased_unigrams():
    assert words("Don't buy the T-shirt for 3.5 dollars, e.g. IMG_2019!") == [
        "don't", "buy", "the", "t-shirt", "for", "3.5", "dollars", "e.g", "img_2019",
    ]  # fmt: skip
    assert words("Ünïcode Straße 東京") == ["ünïcode", "straße", "東京"]


@pytest.mark.parametrize(
    ("value", "expected"), [(None, []), (7, []), ("", []), ("!!! ...", []), (b"\xff", ["ÿ"])]
)
def test_words_total(value, expected):
    assert words(value) == expected


def test_words_on_one_megabyte():
    assert len(words(ONE_MB)) == 200_000


# ---------------------------------------------------------------- check_caption

REASON_CASES = [
    (None, "text_missing"),
    ("", "text_missing"),
    ("   ", "text_missing"),
    (b"bytes are not text", "text_missing"),
    (12, "text_missing"),
    ("a dog", "text_too_short"),
    ("!!!", "text_too_short"),
    (" ".join(["word"] * 21), "text_too_long"),
    ("x" * 501, "text_too_long"),
    ("IMG_20190312_142233.jpg", "text_filename"),
    ("DSC01234", "text_filename"),
    ("image001.png", "text_filename"),
    ("IMG_2019.jpg", "text_filename"),
    ("WhatsApp Image 2019-03-12 at 14.22.33", "text_filename"),
    ("1920x1080", "text_dimensions"),
    ("800 × 600", "text_dimensions"),
    ("Size: 1024*768 px", "text_dimensions"),
    ("https://example.com/photos/cat.jpg", "text_url"),
    ("www.example.org", "text_url"),
    ("data:image/png;base64," + "A" * 5000, "text_url"),
    ("alt img", "text_generic"),
    ("Thumbnail", "text_generic"),
    ("Click to enlarge...", "text_generic"),
    ("photo 3 of 12", "text_generic"),
    ("untitled", "text_generic"),
    ("Untitled-1", "text_generic"),
    ("logo", "text_generic"),
    ("no image available", "text_generic"),
]


@pytest.mark.parametrize(("text", "reason"), REASON_CASES)
def test_check_caption_reason(text, reason):
    assert check_caption(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "a dog on the beach",
        "Golden retriever puppy playing in the snow",
        " ".join(["word"] * 20),
        "Mountain lake at dawn, 1920x1080 wallpaper",
        "IMG 2019 family trip to the coast",
        "Visit example.com for more photos",
        "Logo of the Olympic games",
        "photo of a red car",
    ],
)
def test_check_caption_keeps_real_captions(text):
    assert check_caption(text) is None


def test_check_caption_on_huge_input():
    assert check_caption(normalize_text(ONE_MB)) == "text_too_long"
    assert check_caption(ONE_MB) == "text_too_long"  # not normalised first: still bounded and total
    assert check_caption("x" * 1_000_000) == "text_too_long"
    assert check_caption(normalize_text(None)) == "text_missing"
    assert check_caption(normalize_text(b"\x81\x8d")) == "text_missing"


@pytest.mark.parametrize("detector", [is_dimensions, is_filename, is_generic, is_url])
@pytest.mark.parametrize("text", ["", " ", ONE_MB, "x" * 1_000_000 + ".jpg", "a dog on the beach"])
def test_junk_detectors_total(detector, text):
    assert detector(text) is False


def test_url_caption_with_escapes_is_a_url():
    assert check_caption(normalize_text("https://x.org/my%20cat.jpg")) == "text_url"


def test_text_rules_thresholds():
    rules = TextRules(min_words=1, max_words=3, max_chars=20)
    assert check_caption("dog", rules) is None
    assert check_caption("a big red dog", rules) == "text_too_long"
    assert check_caption("supercalifragilisticexpialidocious", rules) == "text_too_long"
    with pytest.raises(ValueError, match="min_words"):
        TextRules(min_words=5, max_words=3)
    with pytest.raises(ValueError, match="positive"):
        TextRules(max_chars=0)
    datacomp = TextRules(min_words=3, min_chars=6)  # DataComp basic: > 2 words and > 5 characters
    assert check_caption("a b c", datacomp) == "text_too_short" and check_caption("a b cd", datacomp) is None
    with pytest.raises(ValueError, match="min_chars"):
        TextRules(min_chars=600)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, None), (10, None), (11, TEXT_SHARED_BY_MANY_IMAGES), (10**9, TEXT_SHARED_BY_MANY_IMAGES),
     (None, None), ("many", None), (float("nan"), None), (True, None)],
)  # fmt: skip
def test_check_alt_text_shared(count, expected):
    assert check_alt_text_shared(count) == expected


def test_check_alt_text_shared_threshold():
    assert check_alt_text_shared(3, max_images=2) == "text_shared_by_many_images"


# ---------------------------------------------------------------- rare tokens


def test_text_ngrams_are_distinct_per_text():
    unigrams, bigrams = text_ngrams("Dog dog DOG park")
    assert unigrams == {"dog", "park"}
    assert bigrams == {"dog dog", "dog park"}
    assert text_ngrams(None) == (set(), set())


def test_count_ngrams_counts_documents():
    unigrams, bigrams = count_ngrams(["a dog a dog", "a cat", None])
    assert unigrams == {"a": 2, "dog": 1, "cat": 1}
    assert bigrams == {"a dog": 1, "dog a": 1, "a cat": 1}


def test_from_counts_top_k_is_deterministic():
    table = TokenFrequencyTable.from_counts({"b": 5, "a": 5, "c": 9, "d": 1, "z": 0}, {"x y": 3}, 3, 5)
    assert table.unigrams == ("c", "a", "b")  # count desc, ties by string
    assert table.bigrams == ("x y",)
    assert TokenFrequencyTable.from_counts({"z": 0}, {}, 5, 5).unigrams == ()


def test_rare_tokens_use_bigram_escape():
    table = TokenFrequencyTable.from_counts({"a": 9, "in": 9, "photo": 9}, {"hong kong": 9}, 10, 10)
    assert table.rare_tokens(words("a photo in hong kong")) == []
    assert table.rare_tokens(words("a photo in hong")) == ["hong"]
    assert table.rare_tokens(words("a zyxwv photo")) == ["zyxwv"]


def test_check_rare_tokens_reason_and_threshold():
    table = TokenFrequencyTable.from_counts({"a": 9, "dog": 9, "on": 9, "grass": 9}, {}, 10, 10)
    assert check_rare_tokens("A dog on grass", table) is None
    assert check_rare_tokens("a dog on qwzx grass", table) == TEXT_RARE_TOKENS == "text_rare_tokens"
    assert check_rare_tokens("a dog on qwzx grass", table, max_rare=1) is None
    for value in (None, "", 5, b"\xff\xfe"):
        assert check_rare_tokens(value, table) in (None, TEXT_RARE_TOKENS)
    assert check_rare_tokens(None, table) is None
    assert check_rare_tokens(ONE_MB, table) == TEXT_RARE_TOKENS  # "word" is not frequent


def test_table_round_trips_through_json(tmp_path):
    unigrams, bigrams = count_ngrams(["a dog in the park", "a dog on the grass", "the cat"])
    table = TokenFrequencyTable.from_counts(unigrams, bigrams, 4, 2)
    path = tmp_path / "table.json"
    table.save(path)
    loaded = TokenFrequencyTable.load(path)
    assert loaded == table
    assert loaded.rare_tokens(["a", "dog"]) == table.rare_tokens(["a", "dog"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not a token frequency table"),
        (json.dumps({"format": "token-frequency-table", "version": 9}), "version"),
        (json.dumps({"format": "token-frequency-table", "version": 1, "unigrams": [1], "bigrams": []}),
         "lists of strings"),
    ],
)  # fmt: skip
def test_table_load_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        TokenFrequencyTable.load(path)
