"""A held-out evaluation set for the demo: ``root/<object noun>/*.jpg`` (ImageFolder layout).

``render_heldout(root, per_class, seed)`` draws ``per_class`` scenes of each of the ten object kinds
with the pool's renderer (``scenes.render_scene``) and the pool's distribution of colours,
backgrounds and sizes, but never one of the pool's scenes: the pool draws scene seeds from
``[0, 2**31)`` whatever its ``--seed``, the held-out sets from ``[2**31, 2**32)``, and a scene is a
function of its seed, kind, colour, background and size. Held-out set ``seed`` takes its own block
of that range, so two sets with different seeds share no scene either (one can be a few-shot
training split, the other the test split).

Class folders are the object nouns (``ball``, ``box``, …), so zero-shot prompts read "a photo of a
ball." and CatLIP maps each class through WordNet to its synset. The same arguments write the same
bytes.
"""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path

from PIL import Image

from demo.scenes import BACKGROUNDS, CLASHES, COLOURS, KINDS, render_scene

DEFAULT_PER_CLASS = 50  # 500 images: chance 0.10 ± 0.013 (one standard deviation)
# Pool scene seeds are randrange(1 << 31); held-out scene seeds start where those end.
SEED_BASE = 1 << 31
MAX_PER_CLASS = 1 << 12
SEEDS_PER_SET = len(KINDS) * MAX_PER_CLASS
MAX_SETS = (1 << 31) // SEEDS_PER_SET  # held-out seeds stay below 2**32
MARKER = ".heldout"  # written last: a folder with it is a complete held-out set


def scene_seed(kind_index: int, index: int, seed: int) -> int:
    """The renderer seed of held-out image ``index`` of kind ``kind_index`` in set ``seed``."""
    return SEED_BASE + seed * SEEDS_PER_SET + kind_index * MAX_PER_CLASS + index


def heldout_scenes(per_class: int = DEFAULT_PER_CLASS, seed: int = 0) -> list[dict]:
    """What each held-out image shows: kind, colour, background, renderer seed, size, file name."""
    if not 0 < per_class <= MAX_PER_CLASS:
        raise ValueError(f"per_class must be in 1..{MAX_PER_CLASS}, got {per_class}")
    if not 0 <= seed < MAX_SETS:
        raise ValueError(f"seed must be in 0..{MAX_SETS - 1}, got {seed}")
    colours = list(COLOURS)
    scenes = []
    for kind_index, kind in enumerate(KINDS):
        for index in range(per_class):
            render_seed = scene_seed(kind_index, index, seed)
            rng = random.Random(render_seed)
            # Colours cycle so every class shows every colour about equally often: colour alone
            # never tells the class.
            colour = colours[(index + kind_index) % len(colours)]
            background = rng.choice([b for b in BACKGROUNDS if (colour, b) not in CLASHES])
            scenes.append(
                {
                    "kind": kind,
                    "colour": colour,
                    "background": background,
                    "seed": render_seed,
                    "size": (rng.randint(256, 400), rng.randint(256, 400)),  # the pool's range
                    "file": f"{kind}/{kind}-{seed}-{index:04d}.jpg",
                }
            )
    return scenes


def render_heldout(root: str | Path, per_class: int = DEFAULT_PER_CLASS, seed: int = 0) -> Path:
    """Writes the held-out ImageFolder under ``root`` (replacing a previous held-out set there)."""
    root = Path(root)
    scenes = heldout_scenes(per_class, seed)
    if (root / MARKER).is_file():
        shutil.rmtree(root)
    elif root.exists() and any(root.iterdir()):
        raise FileExistsError(
            f"{root} exists and is not a held-out set written by the demo: pass another path"
        )
    for kind in KINDS:
        (root / kind).mkdir(parents=True, exist_ok=True)
    for scene in scenes:
        image = render_scene(
            scene["kind"], scene["colour"], scene["background"], scene["seed"], scene["size"]
        )
        (root / scene["file"]).write_bytes(_jpeg(image))
    (root / MARKER).write_text(f"per_class={per_class} seed={seed}\n", encoding="utf-8")
    return root


def is_heldout(root: str | Path, per_class: int, seed: int) -> bool:
    """Whether ``root`` already holds exactly this held-out set (so it need not be rendered again)."""
    marker = Path(root) / MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8") == f"per_class={per_class} seed={seed}\n"


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)  # the pool's JPEG quality
    return out.getvalue()
