"""CheckCaptionLanguage on the real Beam runner: the language tag, --languages and the explicit-text rule."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from filters.language import identify_language
from pipelines.caption_stages import TEXT_LANGUAGE, CheckCaptionLanguage

OUT: dict[str, list] = {}
CAPTIONS = {
    "en": "a red fox sleeping in the snow under a pine tree",
    "fr": "un chat noir qui dort sur le canapé du salon",
    "de": "ein großer brauner Hund spielt im Garten mit einem Ball",
    "xx": "explicit porn video of a woman",  # an English caption with terms of the explicit list
}


def _store(items: list, label: str) -> None:
    OUT[label] = items


def _run(languages: tuple[str, ...], explicit: bool) -> dict[str, list]:
    OUT.clear()
    records = [{"key": key, "caption": caption} for key, caption in CAPTIONS.items()]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        kept, rejects = pipeline | beam.Create(records) | CheckCaptionLanguage(languages, explicit)
        for label, pcoll in (("kept", kept), ("rejects", rejects)):
            _ = pcoll | f"List{label}" >> beam.combiners.ToList() | f"Store{label}" >> beam.Map(_store, label)
    return dict(OUT)


def test_every_record_gets_its_language_and_nothing_is_dropped_by_default() -> None:
    out = _run((), False)
    assert {r["key"]: r["language"] for r in out["kept"]} == {
        key: identify_language(caption).code for key, caption in CAPTIONS.items()
    }
    assert {"en": "en", "fr": "fr", "de": "de"}.items() <= {
        r["key"]: r["language"] for r in out["kept"]
    }.items()
    assert out["rejects"] == []


def test_languages_and_explicit_text_drop_with_a_reason_and_a_detail() -> None:
    out = _run(("en",), True)
    assert {r["key"] for r in out["kept"]} == {"en"}
    reasons = {r["key"]: (r["stage"], r["reason"], r["detail"]) for r in out["rejects"]}
    assert reasons["fr"][:2] == ("caption", TEXT_LANGUAGE) and reasons["fr"][2].startswith("fr (")
    assert reasons["de"][1] == TEXT_LANGUAGE
    assert reasons["xx"][:2] == ("caption", "text_nsfw") and "porn" in reasons["xx"][2]


def test_require_noun_drops_captions_without_one_on_the_real_runner() -> None:
    OUT.clear()
    captions = {
        "noun": "a red fox sleeping in the snow",
        "none": "very nice and so beautiful",
        "num": "2019 !!!",
    }
    records = [{"key": key, "caption": caption} for key, caption in captions.items()]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        stage = CheckCaptionLanguage(require_noun=True, tagger="pattern")
        kept, rejects = pipeline | beam.Create(records) | stage
        for label, pcoll in (("kept", kept), ("rejects", rejects)):
            _ = pcoll | f"List{label}" >> beam.combiners.ToList() | f"Store{label}" >> beam.Map(_store, label)
    assert [r["key"] for r in OUT["kept"]] == ["noun"]
    assert sorted((r["key"], r["stage"], r["reason"]) for r in OUT["rejects"]) == [
        ("none", "caption", "text_no_noun"),
        ("num", "caption", "text_no_noun"),
    ]
