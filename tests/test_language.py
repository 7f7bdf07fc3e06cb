"""Language identification (CLD2 via pycld2): real sentences in many languages, the short-text fallback."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.language import MAX_CHARS, UNDETERMINED, UNKNOWN, LanguageGuess, identify_language, is_language
from tests.bench_fixtures import load_benchmark

PROPERTY = settings(max_examples=300, derandomize=True, database=None, deadline=None)

# Alt-text-like sentences written for this test, two per language.
SENTENCES = {
    "en": ["Golden retriever puppy playing in the snow", "A plate of pasta with tomato sauce and basil"],
    "fr": ["Un chat noir dort sur le canapé du salon", "Coucher de soleil sur la mer en été"],
    "es": ["Viaje al mar con la familia durante las vacaciones", "Paisaje de montaña al atardecer con nieve"],
    "de": [
        "Der Hund spielt im Garten mit einem roten Ball",
        "Blick auf die Berge im Winter bei Sonnenaufgang",
    ],
    "it": ["Gatto che dorme sul divano vicino alla finestra", "Tramonto sul mare in estate con le barche"],
    "pt": [
        "Cachorro brincando na praia durante o pôr do sol",
        "Mesa de madeira com flores e uma xícara de café",
    ],
    "nl": ["Een rode bal op het gras in de tuin", "Twee kinderen spelen met een hond op het strand"],
    "ru": ["Кошка спит на диване у окна", "Вид на горы зимой на рассвете"],
    "ja": ["猫がソファで寝ている", "雪の中で遊ぶゴールデンレトリバーの子犬"],
    "zh": ["一只黑猫睡在沙发上", "冬天日出时的雪山风景"],
    "ar": ["قطة سوداء نائمة على الأريكة", "غروب الشمس على البحر في الصيف"],
    "tr": ["Deniz kenarında gün batımı manzarası", "Kar içinde oynayan sevimli bir köpek yavrusu"],
    "pl": ["Czarny kot śpi na kanapie w salonie", "Zachód słońca nad morzem latem"],
}


@pytest.mark.parametrize(("code", "text"), [(c, t) for c, texts in SENTENCES.items() for t in texts])
def test_real_sentences_are_identified_reliably(code, text):
    assert identify_language(text) == LanguageGuess(code, True)


def test_short_text_falls_back_to_a_best_effort_guess():
    # CLD2 will not call two words reliably; the best-effort guess comes back flagged unreliable.
    assert identify_language("a cat") == LanguageGuess("en", False)
    assert identify_language("El perro en la playa") == LanguageGuess("es", False)
    # Best effort leans to English on short Latin-script text: why callers can ask for `reliable`.
    assert identify_language("Photo de vacances à la plage") == LanguageGuess("en", False)
    assert identify_language("Een fietser rijdt langs de gracht in de winter") == LanguageGuess("en", False)


@pytest.mark.parametrize("value", [None, "", "   ", "12345 67", "!!! ???", 3.5, ["a cat"], "😀😀😀"])
def test_nothing_to_go_on_is_undetermined(value):
    assert identify_language(value) == UNKNOWN == LanguageGuess(UNDETERMINED, False)
    assert UNDETERMINED == "und"


def test_bytes_controls_and_surrogates_are_handled():
    assert identify_language(b"Der Hund spielt im Garten") == LanguageGuess("de", True)
    assert identify_language("lone \ud800 surrogate in an english sentence about a dog") == LanguageGuess(
        "en", True
    )
    assert identify_language("\x7f\x80\x9f the cat sat on the mat in the sun").code == "en"


def test_work_is_bounded():
    huge = "Der Hund spielt im Garten. " * 100_000
    assert identify_language(huge) == LanguageGuess("de", True)
    assert MAX_CHARS <= 10_000


def test_is_language():
    assert is_language("Golden retriever puppy playing in the snow", ("en",))
    assert not is_language("Un chat noir dort sur le canapé du salon", {"en"})
    assert is_language("a cat", frozenset({"en"}))  # best effort counts


@PROPERTY
@given(st.text(max_size=400))
def test_never_raises_and_is_well_formed(text):
    guess = identify_language(text)
    assert isinstance(guess.code, str) and guess.code and isinstance(guess.reliable, bool)
    assert guess.code != UNDETERMINED or not guess.reliable


def test_benchmark_quick_smoke(capsys):
    bench = load_benchmark("bench_language")
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "captions/s" in out and "text rules (baseline)" in out and "identify_language" in out
