"""Detectors for boilerplate alt-texts: file names (alone or with their size), image sizes, URLs,
generic words and calls to action ("tap to zoom").

Each detector takes a normalised caption (see ``filters.text.normalize_text``) and says
whether the WHOLE caption is junk of that kind; a caption that merely mentions a size or a
URL inside a real sentence is kept. Detectors look at short texts only (a file name or
"1920x1080" is never hundreds of characters long), so they cost nothing on huge inputs and
little on ordinary captions.
"""

from __future__ import annotations

import re

# Length bounds: a file name with an extension, a camera name, a bare size or a stock phrase is
# never longer than this, so the detectors skip longer texts without running a regex.
_MAX_FILENAME_CHARS = 255
_MAX_CAMERA_NAME_CHARS = 60
_MAX_DIMENSIONS_CHARS = 80
_MAX_GENERIC_CHARS = 60

# A caption that ends in a media extension glued to a non-space character is a file name
# ("IMG_2019.jpg", "sunset-beach.png", "My holiday photo.jpg": all derived from file names).
_MEDIA_EXTENSIONS = frozenset(
    {
        "jpg", "jpeg", "jpe", "jfif", "png", "gif", "bmp", "webp", "tif", "tiff", "heic", "heif", "avif",
        "svg", "ico", "raw", "cr2", "nef", "arw", "dng", "psd", "eps", "ai", "mp4", "mov", "avi", "webm", "pdf",
    }
)  # fmt: skip
# Camera, phone and editor default names without an extension; a copy suffix such as
# " (2)" or " copy" may follow, a real word after a space may not ("IMG 2019 beach trip" is kept).
_COPY_SUFFIX = r"(?: ?\(\d+\)| copy| edited| final)?"
_CAMERA_NAME = re.compile(
    r"^(?:"
    r"(?:img|dsc[nf]?|dcim|pict|pxl|mvimg|gopr|gp|dji|vid|sam|wp|fb_img|p|cimg|imag|hpim|mvc|sdc|kif)"
    r"[ _-]?\d{3,}[\w.-]*"
    r"|(?:image|photo|picture|pic|scan|screenshot|untitled)[_-]?\d{2,}[\w.-]*"
    r"|(?:whatsapp image|screen ?shot|screenshot|photo|img)[ _-]\d{4}-\d{2}-\d{2}"
    r"(?:[ _-]at[ _-][\d.:]+(?: ?[ap]m)?|[_-][\w.-]+)?"
    r"|\d{8}[_-]\d{6}[\w.-]*"  # 20190312_142233
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # UUIDs
    r"|(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{16,}"  # content hashes
    rf"){_COPY_SUFFIX}$",
    re.IGNORECASE,
)

_DIMENSIONS = re.compile(r"\d{2,5}\s*(?:[pP][xX]\s*)?[x×X*]\s*\d{2,5}(?:\s*[pP][xX](?![A-Za-z]))?")
# What may surround a bare size ("Size: 800 x 600 pixels", "1920x1080 HD") and still be junk.
_SIZE_WORDS = frozenset(
    {
        "px", "pixel", "pixels", "resolution", "size", "dimensions", "dimension", "image", "photo",
        "picture", "hd", "fhd", "uhd", "qhd", "full", "4k", "8k", "wallpaper", "wallpapers", "high", "res",
    }
)  # fmt: skip
_NON_WORD = re.compile(r"[\W_]+")

_URL = re.compile(
    r"^(?:"
    r"[a-z][a-z0-9+.-]*://\S+"  # http://..., ftp://..., file://...
    r"|data:[\w/+.-]+[;,]\S*"  # inline data URIs
    r"|www\.\S+"
    r"|(?:[a-z0-9-]+\.)+(?:com|org|net|edu|gov|io|co|uk|de|fr|ru|jp|cn|it|es|nl|br|au|in|info|biz|me|tv"
    r"|us|ca|pl|eu|ch|se|no|dk|be|at|cz|kr|ly|gl|to|app|dev|blog|shop|store|xyz|online|site)"
    r"(?:[/:?#]\S*)?"
    r")$",
    re.IGNORECASE,
)

# Stock phrases that say nothing about the image, compared after lowercasing and
# replacing punctuation with spaces (so "Click to enlarge..." and "click-to-enlarge" match).
_GENERIC_PHRASES = frozenset(
    {
        "alt", "alt img", "alt image", "alt text", "alt tag", "img", "image", "images", "photo",
        "photos", "picture", "pictures", "pic", "pics", "thumbnail", "thumbnails", "thumb", "thumbs",
        "click to enlarge", "click here", "click to zoom", "click to view", "click for larger image",
        "click image to enlarge", "view larger", "view larger image", "view image", "view full size",
        "enlarge", "enlarge image", "zoom", "zoom in", "untitled", "untitled design", "untitled image",
        "logo", "logos", "icon", "icons", "banner", "placeholder", "placeholder image", "image placeholder",
        "no image", "no image available", "image not found", "image not available", "image unavailable",
        "photo not available", "no photo", "no photo available", "coming soon", "image coming soon",
        "photo coming soon", "loading", "spacer", "blank", "default", "default image", "avatar",
        "user avatar", "profile picture", "profile photo", "profile image", "featured image",
        "header image", "hero image", "product image", "main image", "cover image", "gallery image",
        "play", "play video", "video thumbnail", "advertisement", "ad", "ads", "sponsored", "button",
        "arrow", "close", "search", "menu", "home", "share", "facebook", "twitter", "pinterest",
        "instagram", "linkedin", "youtube", "email", "print", "rss", "image description",
        "insert image", "photo credit", "image credit", "stock photo", "stock image", "screenshot",
        "screen shot", "this image has an empty alt attribute",
    }
)  # fmt: skip
# "photo 3 of 12", "image 2", "slide 1/5", "#3", "untitled-1", "logo 2": numbered stock phrases.
_NUMBERED = re.compile(
    r"^(?:(?:alt|img|image|photo|picture|pic|slide|item|page|figure|fig|thumbnail|thumb|untitled|logo|icon"
    r"|banner|gallery|product|no|number|nr) )*\d+(?: (?:of )?\d+)?$"
)


def phrase_key(text: str) -> str:
    """Lowercase, punctuation and underscores as spaces, single spaces: the form phrases are compared in."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def is_filename(text: str) -> bool:
    """The caption is a file name: ``IMG_20190312_142233.jpg``, ``DSC01234``, ``image001.png``."""
    text = text.strip()
    if not text or len(text) > _MAX_FILENAME_CHARS:
        return False
    dot = text.rfind(".")
    if dot > 0 and not text[dot - 1].isspace() and text[dot + 1 :].lower() in _MEDIA_EXTENSIONS:
        return True
    return len(text) <= _MAX_CAMERA_NAME_CHARS and bool(_CAMERA_NAME.match(text))


def is_dimensions(text: str) -> bool:
    """The caption is an image size: ``1920x1080``, ``800 × 600``, ``Size: 1024*768 px``."""
    if len(text) > _MAX_DIMENSIONS_CHARS or not _DIMENSIONS.search(text):
        return False
    rest = phrase_key(_DIMENSIONS.sub(" ", text)).split()
    return all(word in _SIZE_WORDS for word in rest)


def is_url(text: str) -> bool:
    """The caption is a URL (``https://…``, ``www.…``, ``example.com/cat``, ``data:image/png;…``)."""
    text = text.strip()
    return bool(text) and " " not in text and bool(_URL.match(text))


def is_generic(text: str) -> bool:
    """The caption is a stock phrase: ``alt img``, ``thumbnail``, ``click to enlarge``, ``photo 3 of 12``."""
    if len(text) > _MAX_GENERIC_CHARS or text.count(" ") > 7:  # no stock phrase has more words
        return False
    key = phrase_key(text)
    return key in _GENERIC_PHRASES or bool(_NUMBERED.match(key))


# A file name with its size after (or before) it, as galleries and upload forms print it:
# "DSC01234.jpg (800×600)", "sunset.png - 1920 x 1080 px", "IMG_0042.JPG (2.1 MB, 4000×3000)".
_FILE_SIZE = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?\s*(?:[kmgt]i?b|bytes?|[kmg])(?!\w)", re.IGNORECASE)
_BRACKETS = "()[]{}<>,;:|/·•@-–—"


def is_filename_with_dimensions(text: str) -> bool:
    """The caption is a file name plus its dimensions (and maybe its byte size): ``DSC01234.jpg (800×600)``."""
    if len(text) > _MAX_FILENAME_CHARS + _MAX_DIMENSIONS_CHARS or not _DIMENSIONS.search(text):
        return False
    rest = _FILE_SIZE.sub(" ", _DIMENSIONS.sub(" ", text))
    kept = [token for token in (t.strip(_BRACKETS) for t in rest.split()) if token]
    kept = [token for token in kept if token.lower() not in _SIZE_WORDS]
    return bool(kept) and is_filename(" ".join(kept))


# Calls to action: the alt-text tells the reader what to do with the image ("tap to zoom",
# "click the thumbnail to view full size", "hover over image to zoom in", "open in new window")
# instead of saying what it shows. A caption is one when every word is from a closed vocabulary,
# one word is an action (a gesture or a verb such as "view") and something marks the interaction:
# a gesture, a zoom-like verb, a size ("larger", "full size") or a stock pair ("new window",
# "read more"). "View of the gallery", "close-up of a mouse" or "open the window" (no marker)
# and any caption with a real word ("red dress, click to enlarge") are kept: the detectors judge
# the whole caption.
_CTA_PAIRS = {
    "mouse over": "mouseover",
    "roll over": "rollover",
    "double click": "doubleclick",
    "double tap": "doubletap",
}
_CTA_GESTURES = frozenset(
    {
        "click",
        "clicking",
        "tap",
        "hover",
        "mouseover",
        "rollover",
        "doubleclick",
        "doubletap",
        "pinch",
        "swipe",
        "scroll",
    }
)
_CTA_ZOOM_VERBS = frozenset({"zoom", "enlarge", "magnify", "expand", "rotate"})
_CTA_VERBS = frozenset(
    {
        "view", "see", "open", "opens", "show", "display", "watch", "play", "download", "read", "learn", "shop",
        "buy", "order", "close", "start", "browse", "touch", "press", "drag", "select", "move", "place", "point",
    }
)  # fmt: skip
_CTA_MARKER_WORDS = (
    _CTA_GESTURES | _CTA_ZOOM_VERBS | {"larger", "bigger", "fullsize", "lightbox", "slideshow"}
)
# "full", "new" or "high" alone mark nothing: "a full view of the bay" is a caption.
_CTA_MARKER_PAIRS = (
    "full size", "full screen", "full resolution", "high res", "hi res", "high resolution", "new window",
    "new tab", "read more", "learn more", "see more", "shop now", "buy now", "order now",
)  # fmt: skip
_CTA_FILLER = frozenset(
    {
        "to", "for", "and", "or", "on", "over", "at", "in", "out", "into", "of", "with", "the", "this", "that",
        "a", "an", "each", "any", "all", "your", "our", "here", "it", "them", "me", "more", "now", "please",
        "image", "images", "photo", "photos", "picture", "pictures", "pic", "pics", "thumbnail", "thumbnails",
        "thumb", "thumbs", "version", "size", "sized", "screen", "mode", "window", "tab", "gallery", "details",
        "detail", "link", "button", "icon", "above", "below", "up", "down", "left", "right", "large", "big",
        "product", "main", "cursor", "pointer", "again", "back", "closer", "look", "inside", "full", "new",
        "hi", "high", "res", "resolution", "original", "360", "degree", "degrees", "view",
    }
)  # fmt: skip
_CTA_VOCABULARY = _CTA_MARKER_WORDS | _CTA_VERBS | _CTA_FILLER
_MAX_CTA_CHARS = 100
_MAX_CTA_WORDS = 16
_CTA_PAIR_WORDS = frozenset(w for pair in _CTA_PAIRS for w in pair.split())
_STRIP = "()[]{}<>.,;:!?'\"|/»«…-–—*#&+"


def is_call_to_action(text: str) -> bool:
    """The caption tells the reader what to do: ``tap to zoom``, ``view full size``, ``click image to enlarge``."""
    if len(text) > _MAX_CTA_CHARS:
        return False
    lowered = text.lower()
    for token in lowered.split():  # fast exit at the first real word, before any regex
        word = token.strip(_STRIP)
        if word.isalpha() and word not in _CTA_VOCABULARY and word not in _CTA_PAIR_WORDS:
            return False
    joined = phrase_key(lowered)
    for pair, word in _CTA_PAIRS.items():
        joined = joined.replace(pair, word)
    tokens = joined.split()
    if not tokens or len(tokens) > _MAX_CTA_WORDS or not all(t in _CTA_VOCABULARY for t in tokens):
        return False
    if not any(t in _CTA_GESTURES or t in _CTA_ZOOM_VERBS or t in _CTA_VERBS for t in tokens):
        return False
    return any(t in _CTA_MARKER_WORDS for t in tokens) or any(pair in joined for pair in _CTA_MARKER_PAIRS)
