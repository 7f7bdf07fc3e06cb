"""Alt-texts for the demo pool: realistic captions for scenes, the web's junk alt-texts, and the allowlist.

Everything takes an explicit ``random.Random`` so the pool is the same for the same seed.
"""

from __future__ import annotations

import random

from demo.scenes import COLOURS, KINDS

BACKGROUND_PHRASES: dict[str, tuple[str, ...]] = {
    "sky": ("against the sky", "under a blue sky", "against a cloudy sky"),
    "grass": ("on the grass", "in a green field", "on the lawn"),
    "plain": ("on a plain background", "isolated on a light background", "on a white table"),
    "gradient": ("on a colourful background", "on a soft gradient background"),
    "sand": ("on the beach", "in the sand", "on a sandy beach"),
}
# "{a}" is the article for the word after it ("a red", "an orange").
_TEMPLATES = (
    "{a} {colour} {kind} {where}",
    "{Colour} {kind} {where}",
    "photo of {a} {colour} {kind} {where}",
    "{a} small {colour} {kind} {where}",
    "{a} big {colour} {kind} {where} on a sunny day",
    "close-up of {a} {colour} {kind}",
    "my daughter's {colour} {kind} {where}",
    "the {colour} {kind} we saw {where}",
    "{colour} {kind} for sale, like new",
    "simple drawing of {a} {colour} {kind} {where}",
    "cute {colour} {kind} {where}",
    "look at this {colour} {kind}!",
    "{A} {colour} {kind}, {where}.",
    "there is {a} {colour} {kind} {where}",
    "cartoon {kind} in {colour} {where}",
    "{kind}, {colour}, {where}",
)
_WITHOUT_COLOUR = ("a {kind} {where}", "picture of a {kind} {where}", "my new {kind}")

SHARED_ALT_TEXT = "great gift idea: a colourful ball for kids"
JUNK_KINDS = ("file_name", "dimensions", "boilerplate", "url", "too_short", "too_long")
_BOILERPLATE = ("click to enlarge", "image", "photo", "untitled", "thumbnail", "alt img", "view larger")
_BIGRAMS = (
    "red ball",
    "blue car",
    "green tree",
    "yellow umbrella",
    "orange fish",
    "pink flower",
    "purple house",
)
_DISTRACTORS = ("giraffe", "piano", "volcano", "penguin", "violin", "submarine", "red giraffe", "bicycle")
_PHOTO_QUERIES = (
    "ladybird", "leaf", "grass", "water", "drop", "sky", "cloud", "storm", "road", "wood", "sea", "dune",
    "cat", "coffee", "rocket", "astronaut", "motorcycle", "coin", "moon", "galaxy", "brick", "wall",
    "eye", "camera", "tripod", "seed", "dandelion", "marigold", "blue sky", "green grass",
    "storm clouds", "brick wall", "cup of coffee", "gravel", "tissue", "colour wheel",
)  # fmt: skip


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def scene_caption(kind: str, colour: str, background: str, rng: random.Random) -> str:
    """A realistic alt-text for a scene: usually names the colour and the object, in varied phrasing."""
    where = rng.choice(BACKGROUND_PHRASES[background])
    if rng.random() < 0.1:
        return rng.choice(_WITHOUT_COLOUR).format(kind=kind, where=where)
    template = rng.choice(_TEMPLATES)
    return template.format(
        a=article(colour), A=article(colour).capitalize(), colour=colour, Colour=colour.capitalize(),
        kind=kind, where=where,
    )  # fmt: skip


def junk_caption(junk_kind: str, kind: str, colour: str, rng: random.Random) -> str:
    """An alt-text of the kind the text rules drop: file names, sizes, boilerplate, URLs, too short/long."""
    if junk_kind == "file_name":
        return rng.choice((f"IMG_{rng.randrange(1000, 9999)}.jpg", f"DSC{rng.randrange(10000, 99999)}.JPG",
                           f"{kind}-{rng.randrange(1, 99)}.png", f"2019031{rng.randrange(10)}_142233"))  # fmt: skip
    if junk_kind == "dimensions":
        width, height = rng.choice(((1920, 1080), (800, 600), (1024, 768), (640, 480)))
        return rng.choice((f"{width}x{height}", f"{width} x {height} px"))
    if junk_kind == "boilerplate":
        return rng.choice(_BOILERPLATE)
    if junk_kind == "url":
        return rng.choice(
            (f"https://cdn.example.com/img/{kind}_{rng.randrange(1000)}.jpg", "www.example.com/shop")
        )
    if junk_kind == "too_short":
        return rng.choice((kind, f"{colour} {kind}"))
    if junk_kind == "too_long":
        return (
            f"this is {article(colour)} {colour} {kind} that i found in the attic of my grandmother's old house "
            "last summer and i think it might be worth a lot of money so please let me know what you think"
        )
    raise ValueError(f"unknown junk kind {junk_kind!r}")


def allowlist() -> list[str]:
    """The demo's query list: object nouns, colours, a few bigrams, photo subjects and distractors.

    Only a few colour+object bigrams: a pair is credited to the rarest query it matches, and with every
    bigram listed each pair would be credited to its own small bigram and the per-query cap would
    never bind on the head (ball, box, the colours).
    """
    return sorted({*KINDS, *COLOURS, *_BIGRAMS, *_PHOTO_QUERIES, *_DISTRACTORS})
