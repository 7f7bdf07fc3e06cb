"""Published curation recipes by name: the ``curate`` settings each paper's rules map to.

``curate --recipe NAME`` takes these as its defaults (an option given on the command line still wins);
``curate --print-recipe NAME`` shows them. A recipe that matches no query list (ALIGN, DataComp's basic
filter, COYO-700M) runs without ``--allowlist``: no query matching and no per-query balance. What a
paper does that this project does not (yet) is listed in ``missing``, so a recipe never claims more
than it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """``settings``: curate option destinations → values. ``matches_queries``: needs ``--allowlist``."""

    name: str
    source: str
    matches_queries: bool
    settings: dict[str, Any]
    missing: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """What ``curate --print-recipe`` prints: the source, the settings as curate options, what is left out."""
        lines = [f"recipe {self.name}: {self.source}", "settings (curate options; given options win):"]
        lines += [
            f"  --{name}" if value is True else f"  --{name} {value}" for name, value in self.settings.items()
        ]
        lines.append(
            "  --allowlist PATH is needed"
            if self.matches_queries
            else "  no --allowlist: no query matching or balance"
        )
        if self.missing:
            lines += ["not run by this project yet:", *(f"  - {item}" for item in self.missing)]
        return "\n".join(lines)


# Shared by the ALIGN-style recipes: ALIGN's image rule (shorter side > 200 px, aspect < 3).
_ALIGN_IMAGE = {"min_image_side": 200, "max_aspect_ratio": 3.0}

RECIPES: dict[str, Recipe] = {
    "align": Recipe(
        "align",
        "Jia et al. 2021, ALIGN §3: no query list; alt-texts of 3-20 words, shared by <= 10 images, "
        "rare tokens dropped; shorter side > 200 px, aspect < 3; images with > 1000 alt-texts dropped; "
        "(near-)duplicates of evaluation images dropped; no general image dedup",
        False,
        {
            "min_words": 3,
            "max_words": 20,
            "max_images_per_alt_text": 10,
            "rare_tokens": "pool",
            **_ALIGN_IMAGE,
            "max_alt_texts_per_image": 1000,
            "dedup": "none",
            "drop_nsfw_images": True,
        },
        ("ALIGN's own pornography classifier (NudeNet's detector stands in)",),
    ),
    "wit": Recipe(
        "wit",
        "Radford et al. 2021, CLIP §2.2 (WIT): pairs whose text contains one of ~500k queries, "
        "at most 20,000 pairs per query",
        True,
        {"balance": "exact", "per_query_cap": 20_000},
    ),
    "metaclip": Recipe(
        "metaclip",
        "Xu et al. 2024, MetaCLIP §3: match against the 500k metadata entries, then balanced sampling "
        "with t = 20,000 (an entry matched by n pairs keeps each with probability min(1, t / n))",
        True,
        {"balance": "metaclip", "per_query_cap": 20_000, "match_semantics": "metaclip"},
    ),
    "datacomp-basic": Recipe(
        "datacomp-basic",
        "Gadre et al. 2023, DataComp basic filtering: English captions (fastText) with > 2 words and > 5 "
        "characters, "
        "images with shorter side >= 200 px and aspect <= 3",
        False,
        {
            "languages": "en",
            "min_words": 3,
            "min_caption_chars": 6,
            "max_words": 10_000,
            "max_images_per_alt_text": 10**9,
            "rare_tokens": "off",
            "min_image_side": 200,
            "max_aspect_ratio": 3.0,
            "dedup": "none",
        },
        ("fastText's language identifier (the English filter here is CLD2's)",),
    ),
    "coyo": Recipe(
        "coyo",
        "Byeon et al. 2022, COYO-700M: image >= 5 KB, aspect <= 3, shorter side >= 200 px; text of 3-256 "
        "words, texts appearing > 10 times dropped, explicit texts dropped by a word list; pHash "
        "near-duplicates of evaluation images dropped",
        False,
        {
            "min_image_file_bytes": 5_000,
            "min_image_side": 200,
            "max_aspect_ratio": 3.0,
            "min_words": 3,
            "max_words": 256,
            "max_images_per_alt_text": 10,
            "rare_tokens": "off",
            "dedup": "none",
            "drop_explicit_text": True,
            "drop_nsfw_images": True,
            "require_noun": True,
        },
    ),
}


def recipe_named(name: str) -> Recipe:
    """The recipe called ``name``; ``ValueError`` naming the known ones otherwise."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]
