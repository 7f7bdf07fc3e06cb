"""Caption text: normalisation, tokenisation and ALIGN's alt-text rules.

``normalize_text`` turns whatever a crawl put in the text column into one clean line;
``check_caption`` then drops junk alt-texts with a stable reason. Check order (first hit
wins): ``text_missing``, then the boilerplate detectors ``text_url``, ``text_filename``,
``text_filename_dimensions``, ``text_dimensions``, ``text_generic``, ``text_call_to_action``
(after ``text_generic``, whose list has long held "click to enlarge"), then the length rules
``text_too_long`` (characters, then words) and ``text_too_short``. Junk comes before length on
purpose: "IMG_2019.jpg" and "1920x1080" are also too short, but the junk reason says what the
text actually is, and a 100 kB data URI is better reported as ``text_url`` than as ``text_too_long``.
"""

from __future__ import annotations

import codecs
import html
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from filters.decision import KEEP, Verdict
from filters.junk import (
    is_call_to_action,
    is_dimensions,
    is_filename,
    is_filename_with_dimensions,
    is_generic,
    is_url,
)

TEXT_MISSING = "text_missing"
TEXT_TOO_SHORT = "text_too_short"
TEXT_TOO_LONG = "text_too_long"
TEXT_FILENAME = "text_filename"
TEXT_DIMENSIONS = "text_dimensions"
TEXT_URL = "text_url"
TEXT_GENERIC = "text_generic"
TEXT_FILENAME_DIMENSIONS = "text_filename_dimensions"  # "DSC01234.jpg (800×600)"
TEXT_CALL_TO_ACTION = "text_call_to_action"  # "tap to zoom", "view full size"
TEXT_SHARED_BY_MANY_IMAGES = "text_shared_by_many_images"

# Raw input beyond this is cut before any work: a caption is a few hundred characters at most,
# and every later step is linear, so a 1 MB cell costs no more than a 64 kB one. The cut text is
# still far above any sensible ``max_chars``, so it is rejected as too long, never shortened into a pass.
MAX_INPUT_CHARS = 65_536

_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_WHITESPACE = re.compile(r"\s")
# Comments are bounded so that thousands of unclosed "<!--" cost linear, not quadratic, time.
_TAG = re.compile(r"<!--.{0,1000}?-->|</?[A-Za-z][^<>]*>", re.DOTALL)
# Unicode categories Cc (controls), Cf (invisible format characters: zero-width spaces,
# bidi marks, BOM), Cs (lone surrogates) and Co (private use), minus the whitespace among them
# (tabs, newlines, U+001C-001F, U+0085), which the whitespace collapse turns into spaces; plus
# U+FFFD, the replacement character a lossy decode leaves. Ranges from Python 3.11's Unicode 14
# plus U+13439-1343F (format controls added in Unicode 15); a test checks them against ``unicodedata``.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ud800-\uf8ff\ufeff\ufff9-\ufffb\ufffd"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f\U000f0000-\U000ffffd\U00100000-\U0010fffd]"
)
# Terminal escape sequences (colour codes pasted from a console): CSI "ESC [ ... final" or its one-byte
# form U+009B, OSC "ESC ] ... BEL/ST", and two-character escapes. Removed whole: dropping only the
# ESC as an invisible character would leave "[31m" in the caption.
_ANSI_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]{0,64}[ -/]{0,16}[@-~]?|\x1b\][^\x07\x1b]{0,1024}(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?"
)
_WORD = re.compile(r"\w+(?:['’.-]\w+)*")


def _cp1252_for_bad_bytes(error: UnicodeError) -> tuple[str, int]:
    # Each byte that is not part of valid UTF-8 is read as Windows-1252 (what mis-declared web pages
    # almost always are), so one stray byte costs one character, not the decoding of the whole text.
    bad = error.object[error.start : error.end]  # type: ignore[attr-defined]
    return bad.decode("cp1252", errors="replace"), error.end  # type: ignore[attr-defined]


codecs.register_error("alt_text_cp1252", _cp1252_for_bad_bytes)


def decode_text(raw: bytes, complete: bool = True) -> str:
    """``raw`` as UTF-8, each invalid byte read as Windows-1252; never fails.

    ``complete=False``: ``raw`` was cut from a longer text, so a character split by the cut is dropped
    rather than decoded as two Windows-1252 characters.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="alt_text_cp1252")
    return decoder.decode(raw, final=complete)


def coerce_text(value: object) -> str:
    """``value`` as a ``str``: bytes are decoded, None/NaN/numbers/other objects give ``""``.

    Bytes are read as UTF-8, a byte that is not valid UTF-8 as Windows-1252 (``decode_text``), so
    decoding never fails. At most ``4 * MAX_INPUT_CHARS`` bytes are decoded.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value[: MAX_INPUT_CHARS * 4])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return decode_text(raw, complete=len(value) <= len(raw))
    return ""


def _percent_decode(text: str) -> str:
    # Only a text that is clearly one URL-encoded token is decoded: no whitespace, at least one
    # %XX escape, and the escapes form valid UTF-8. "50% off" or "100%" stay as they are, and so
    # does a URL (decoding would only hide that it is one).
    if "%" not in text or not _PERCENT_ESCAPE.search(text) or _WHITESPACE.search(text) or "://" in text:
        return text
    decode = unquote if "%20" in text or "+" not in text else unquote_plus  # form encoding: + is a space
    try:
        return decode(text, errors="strict")
    except UnicodeDecodeError:
        return text


def _html_decode(text: str) -> str:
    for _ in range(3):  # alt attributes are often escaped twice ("&amp;amp;")
        if "&" not in text:
            break
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return _TAG.sub(" ", text) if "<" in text else text


def normalize_text(value: object) -> str:
    """One clean line of caption text; never raises.

    Steps: coerce to ``str`` (bytes decoded, None/non-text → ``""``), cut to ``MAX_INPUT_CHARS``,
    percent-decode when the whole text is URL-encoded, unescape HTML entities and strip tags,
    Unicode NFC, drop terminal escape sequences and invisible/control characters, collapse
    whitespace to single spaces and trim. Case is kept (matching can be case-sensitive).
    """
    text = coerce_text(value)[:MAX_INPUT_CHARS]
    if not text:
        return ""
    text = _html_decode(_percent_decode(text))
    text = unicodedata.normalize("NFC", text)
    if not (text.isascii() and text.isprintable()):  # the common case needs no scan
        if "\x1b" in text or "\x9b" in text:
            text = _ANSI_ESCAPE.sub("", text)
        text = _INVISIBLE.sub("", text)
    return " ".join(text.split())


def words(text: object) -> list[str]:
    """Lowercased unigrams: runs of letters/digits, keeping inner ' . - ("don't", "t-shirt", "3.5").

    The one tokenisation used for the word-count rules, the rare-token table and allowlist unigrams.
    """
    return _WORD.findall(coerce_text(text).lower())


@dataclass(frozen=True)
class TextRules:
    """Thresholds for the alt-text rules; defaults from ALIGN (Jia et al. 2021, §3)."""

    min_words: int = 3  # ALIGN: drop alt-texts shorter than 3 unigrams
    max_words: int = 20  # ALIGN: ... or longer than 20 unigrams
    max_chars: int = 500  # 20 long words fit easily; bounds pathological single "words"
    min_chars: int = 0  # DataComp basic: more than 5 characters (6); ALIGN counts words only
    max_images_per_text: int = 10  # ALIGN: drop alt-texts shared by more than 10 images
    max_rare_tokens: int = 0  # ALIGN: drop alt-texts with any rare token

    def __post_init__(self) -> None:
        if self.min_words < 0 or self.max_words < self.min_words:
            raise ValueError(f"need 0 <= min_words <= max_words, got {self.min_words} and {self.max_words}")
        if self.max_chars <= 0 or self.max_images_per_text < 1 or self.max_rare_tokens < 0:
            raise ValueError("max_chars and max_images_per_text must be positive, max_rare_tokens >= 0")
        if not 0 <= self.min_chars <= self.max_chars:
            raise ValueError(f"need 0 <= min_chars <= max_chars, got {self.min_chars} and {self.max_chars}")


DEFAULT_TEXT_RULES = TextRules()


def check_caption(text: object, rules: TextRules = DEFAULT_TEXT_RULES) -> Verdict:
    """Keep, or the reason this (normalised) caption is junk; see the module docstring for the order.

    Pass ``normalize_text`` output. A non-string (None, bytes, numbers) is ``text_missing``.
    """
    if not isinstance(text, str) or not text.strip():
        return TEXT_MISSING
    if is_url(text):
        return TEXT_URL
    if is_filename(text):
        return TEXT_FILENAME
    if is_filename_with_dimensions(text):
        return TEXT_FILENAME_DIMENSIONS
    if is_dimensions(text):
        return TEXT_DIMENSIONS
    if is_generic(text):
        return TEXT_GENERIC
    if is_call_to_action(text):
        return TEXT_CALL_TO_ACTION
    if len(text) > rules.max_chars:
        return TEXT_TOO_LONG
    count = len(words(text))
    if count > rules.max_words:
        return TEXT_TOO_LONG
    if count < rules.min_words or len(text) < rules.min_chars:
        return TEXT_TOO_SHORT
    return KEEP


def check_alt_text_shared(image_count: object, max_images: int = 10) -> Verdict:
    """``text_shared_by_many_images`` when the same alt-text is used by more than ``max_images`` images.

    The pipeline counts images per normalised alt-text globally and passes the count here;
    a missing or non-numeric count means "not known to be shared" and keeps the pair.
    """
    if isinstance(image_count, bool) or not isinstance(image_count, (int, float)):
        return KEEP
    return TEXT_SHARED_BY_MANY_IMAGES if image_count > max_images else KEEP
