"""Boilerplate alt-texts: calls to action and a file name with its dimensions (named cases + properties)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.junk import is_call_to_action, is_filename, is_filename_with_dimensions
from filters.text import (
    TEXT_CALL_TO_ACTION,
    TEXT_FILENAME_DIMENSIONS,
    check_caption,
    normalize_text,
)

# Derandomised and without a database: CI runs the same examples every time and writes nothing.
PROPERTY = settings(max_examples=300, derandomize=True, database=None, deadline=None)

CALLS_TO_ACTION = [
    "tap to zoom",
    "Tap to Zoom",
    "Click image to enlarge",
    "Click on the image to see it larger",
    "Click the picture for a larger view",
    "Hover over image to zoom",
    "Roll over image to zoom in",
    "Mouse over to zoom",
    "Double-click to enlarge",
    "Pinch to zoom",
    "Click thumbnails to view full size",
    "Tap image to view full size",
    "View full size image",
    "See larger image",
    "View larger photo",
    "Click for full size",
    "Click for larger version",
    "Open image in new tab",
    "(Click to enlarge)",
    "Click to enlarge | Tap to zoom",
    "Zoom in on the image",
    "Move your mouse over the image to zoom",
    "Click here to view the full-size photo",
    "Click & drag to rotate",
    "View in full screen",
    "Read more",
]
REAL_CAPTIONS = [
    "Close up of a mouse",
    "View of the main gallery",
    "Open the window",
    "A full view of the bay",
    "Red dress, click to enlarge",  # a real description with boilerplate: the whole caption is not junk
    "Photo gallery of the wedding",
    "Zoom lens on a camera",
    "Close-up photo of a bee",
    "Watch video of the concert",
    "the original photo of the band",
    "Mountain lake at dawn, 1920x1080 wallpaper",
]


@pytest.mark.parametrize("text", CALLS_TO_ACTION)
def test_calls_to_action_are_junk(text):
    assert is_call_to_action(text)
    assert check_caption(normalize_text(text)) in (TEXT_CALL_TO_ACTION, "text_generic", "text_too_short")


@pytest.mark.parametrize(
    "text", ["tap to zoom", "Click on the image to see it larger", "Hover over image to zoom"]
)
def test_call_to_action_reason(text):
    assert check_caption(text) == TEXT_CALL_TO_ACTION == "text_call_to_action"


def test_generic_list_keeps_its_reason():
    # "click to enlarge" and "view full size" were stock phrases before this rule existed.
    assert check_caption("Click to enlarge...") == "text_generic"
    assert check_caption("view full size") == "text_generic"


@pytest.mark.parametrize("text", REAL_CAPTIONS)
def test_real_captions_are_not_calls_to_action(text):
    assert not is_call_to_action(text)
    assert check_caption(text) != TEXT_CALL_TO_ACTION


FILE_NAMES_WITH_SIZES = [
    "DSC01234.jpg (800×600)",
    "IMG_2019.JPG 1024x768",
    "photo.png - 640 x 480 px",
    "sunset.jpg (1.2 MB, 1920×1080)",
    "image001.png [800x600]",
    "DSC01234.jpg (800×600, 245 KB)",
    "800x600 DSC01234.jpg",
    "DSC01234 (800x600)",
    "IMG_1234.JPG[1024x768]",
    "Size: 800x600 IMG_1234.jpg",
    "My holiday photo.jpg 800x600",
]


@pytest.mark.parametrize("text", FILE_NAMES_WITH_SIZES)
def test_file_name_with_dimensions(text):
    assert is_filename_with_dimensions(text)
    assert check_caption(text) == _expected_file_reason(text)


def _expected_file_reason(text: str) -> str:
    # A text that ends in a glued extension ("800x600 DSC01234.jpg") was a file name before this
    # rule, and ``text_filename`` comes first.
    return "text_filename" if is_filename(text) else TEXT_FILENAME_DIMENSIONS


@pytest.mark.parametrize(
    "text",
    ["Mountain lake 1920x1080", "1920x1080", "Beach at sunset, 800x600 print for sale", "DSC01234.jpg"],
)
def test_not_a_file_name_with_dimensions(text):
    assert not is_filename_with_dimensions(text)


def test_plain_file_name_and_plain_size_keep_their_reasons():
    assert check_caption("DSC01234.jpg (800×600)") == TEXT_FILENAME_DIMENSIONS == "text_filename_dimensions"
    assert check_caption("DSC01234.jpg") == "text_filename"
    assert check_caption("1920x1080") == "text_dimensions"


# ---------------------------------------------------------------- properties

_GESTURES = st.sampled_from(
    ["click", "tap", "hover over", "mouse over", "roll over", "double-click", "pinch"]
)
_OBJECTS = st.sampled_from(
    ["", "image", "the image", "on the photo", "the thumbnail", "here", "this picture"]
)
_LINKS = st.sampled_from(["to", "for"])
_ACTIONS = st.sampled_from(
    [
        "zoom",
        "zoom in",
        "enlarge",
        "view full size",
        "see it larger",
        "a larger view",
        "view larger image",
        "expand",
    ]
)
_DECORATION = st.sampled_from(["{}", "({})", "[{}]", "{}...", "» {}", "{} »", "{}!", "- {} -"])


@st.composite
def calls_to_action(draw):
    words = [draw(_GESTURES), draw(_OBJECTS), draw(_LINKS), draw(_ACTIONS)]
    text = " ".join(w for w in words if w)
    text = "".join(c.upper() if draw(st.booleans()) else c for c in text) if draw(st.booleans()) else text
    return draw(_DECORATION).format(text)


# Real words outside the call-to-action vocabulary.
_CONTENT = st.sampled_from(
    ["dress", "sunset", "dog", "kitchen", "beach", "wedding", "sofa", "bicycle", "tiger"]
)


@PROPERTY
@given(calls_to_action())
def test_generated_calls_to_action_are_detected(text):
    assert is_call_to_action(text)
    assert check_caption(text) in (TEXT_CALL_TO_ACTION, "text_generic")


@PROPERTY
@given(calls_to_action(), _CONTENT, st.booleans())
def test_a_real_word_makes_it_a_caption(text, word, before):
    combined = f"{word} {text}" if before else f"{text} {word}"
    assert not is_call_to_action(combined)


_CAMERA = st.sampled_from(["DSC", "IMG_", "DSCN", "PXL_", "image", "photo_", "P"])
_EXT = st.sampled_from(["jpg", "JPG", "jpeg", "png", "webp", "heic"])
_TIMES = st.sampled_from(["x", "×", "X", " x ", " × ", "*"])
_FILE_SIZE = st.sampled_from(["", "245 KB", "1.2 MB", "3,4 MB", "512kB", "900 bytes"])
_SHAPE = st.sampled_from(
    ["{f} ({d})", "{f} [{d}]", "{f} - {d}", "{f} {d}", "{f} ({d}, {s})", "{f} ({s}, {d})", "{d} {f}"]
)


@st.composite
def file_names_with_sizes(draw):
    name = f"{draw(_CAMERA)}{draw(st.integers(1000, 99999))}"
    if draw(st.booleans()):
        name = f"{name}.{draw(_EXT)}"
    dims = f"{draw(st.integers(16, 12000))}{draw(_TIMES)}{draw(st.integers(16, 12000))}"
    if draw(st.booleans()):
        dims += " px"
    size = draw(_FILE_SIZE) or "10 KB"
    return draw(_SHAPE).format(f=name, d=dims, s=size)


@PROPERTY
@given(file_names_with_sizes())
def test_generated_file_names_with_sizes_are_detected(text):
    assert is_filename_with_dimensions(text), text
    assert check_caption(text) == _expected_file_reason(text)


@PROPERTY
@given(st.lists(_CONTENT, min_size=2, max_size=6), st.integers(16, 9999), st.integers(16, 9999))
def test_a_sentence_with_a_size_is_not_a_file_name(words, width, height):
    assert not is_filename_with_dimensions(f"{' '.join(words)} {width}x{height}")


@PROPERTY
@given(st.text(max_size=300))
def test_detectors_and_check_caption_are_total(text):
    assert isinstance(is_call_to_action(text), bool)
    assert isinstance(is_filename_with_dimensions(text), bool)
    normalised = normalize_text(text)
    assert check_caption(normalised) is None or isinstance(check_caption(normalised), str)


@pytest.mark.parametrize("detector", [is_call_to_action, is_filename_with_dimensions])
def test_detectors_bounded_on_huge_input(detector):
    assert detector("tap to zoom " * 100_000) is False
    assert detector("DSC01234.jpg (800×600) " * 50_000) is False
