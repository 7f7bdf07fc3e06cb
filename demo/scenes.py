"""Deterministic toy scenes: one coloured object on a background, drawn with PIL.

``render_scene(kind, colour, background, seed, size)`` always returns the same pixels for the same
arguments. Scenes are simple, but object shape and colour are plain in the pixels, so a tiny
image-text model trained on the demo pool can learn them within minutes on a CPU.

Every object noun is a WordNet noun whose FIRST noun sense is the object drawn (CatLIP's labeller
takes the first sense), checked by ``tests/test_demo.py`` against nltk's WordNet 3.0:

=========  ==============  =============================================================
noun       first sense     gloss (abridged)
=========  ==============  =============================================================
ball       ball.n.01       round object that is hit or thrown or kicked in games
box        box.n.01        a (usually rectangular) container; may have a lid
tree       tree.n.01       a tall perennial woody plant having a main trunk and branches
house      house.n.01      a dwelling that serves as living quarters for one or more families
car        car.n.01        a motor vehicle with four wheels
flower     flower.n.01     a plant cultivated for its blooms or blossoms
umbrella   umbrella.n.01   a lightweight handheld collapsible canopy
boat       boat.n.01       a small vessel for travel on water
fish       fish.n.01       any of various mostly cold-blooded aquatic vertebrates
cup        cup.n.01        a small open container usually used for drinking
=========  ==============  =============================================================

(Avoided: kite, whose first sense is a bank check; star, a celestial body; heart, the locus of
feelings; table, a set of data in rows and columns.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

KINDS: dict[str, str] = {
    "ball": "ball.n.01",
    "box": "box.n.01",
    "tree": "tree.n.01",
    "house": "house.n.01",
    "car": "car.n.01",
    "flower": "flower.n.01",
    "umbrella": "umbrella.n.01",
    "boat": "boat.n.01",
    "fish": "fish.n.01",
    "cup": "cup.n.01",
}
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (210, 30, 35),
    "green": (40, 160, 60),
    "blue": (35, 75, 205),
    "yellow": (240, 205, 30),
    "orange": (245, 130, 20),
    "purple": (130, 50, 165),
    "pink": (240, 120, 175),
}
BACKGROUNDS = ("sky", "grass", "plain", "gradient", "sand")
# Object colours that would vanish into a background; the pool generator avoids these pairs.
CLASHES = {("green", "grass"), ("blue", "sky"), ("yellow", "sand"), ("orange", "sand")}

Box = tuple[float, float, float]  # centre x, centre y, radius (half the object's extent)
_BLACK = (25, 25, 25)
_WHITE = (245, 245, 245)
_BROWN = (110, 70, 35)


def render_scene(
    kind: str, colour: str, background: str, seed: int, size: tuple[int, int] = (320, 320)
) -> Image.Image:
    """An RGB image of a ``colour`` ``kind`` on ``background``; placement, size and noise come from ``seed``."""
    if kind not in KINDS or colour not in COLOURS or background not in BACKGROUNDS:
        raise ValueError(f"unknown scene {kind!r}/{colour!r}/{background!r}")
    width, height = size
    rng = np.random.default_rng([seed, width, height])
    image = _background(background, width, height, rng)
    radius = min(width, height) * rng.uniform(0.22, 0.34)
    cx = rng.uniform(radius, width - radius)
    cy = rng.uniform(radius, height - radius)
    rgb = tuple(int(np.clip(c + rng.integers(-18, 19), 0, 255)) for c in COLOURS[colour])
    _DRAW[kind](ImageDraw.Draw(image), (cx, cy, radius), rgb)
    # Uneven light (a random tilted plane) varies the low frequencies that pHash keys on, so two toy
    # scenes of one kind are not near-duplicates just for sharing a layout; then sensor-like noise.
    tilt_x, tilt_y = rng.uniform(-0.35, 0.35, size=2)
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    light = (1.0 + tilt_x * xs + tilt_y * ys)[:, :, None]
    noise = rng.integers(-6, 7, size=(height, width, 1)).astype(np.float32)
    pixels = np.asarray(image, dtype=np.float32) * light + noise
    return Image.fromarray(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8))


def _background(name: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    if name == "sky":
        top, bottom = np.array([70, 130, 215]), np.array([190, 220, 250])
        pixels = np.broadcast_to(top + (bottom - top) * rows, (height, width, 3)).copy()
        image = Image.fromarray(pixels.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 4))):  # a few clouds
            x, y = rng.uniform(0, width), rng.uniform(0, height * 0.6)
            w, h = rng.uniform(40, 90), rng.uniform(15, 30)
            draw.ellipse((x - w, y - h, x + w, y + h), fill=(240, 244, 250))
        return image
    if name == "grass":
        horizon = int(height * rng.uniform(0.25, 0.45))
        pixels = np.empty((height, width, 3), dtype=np.float32)
        pixels[:horizon] = (175, 210, 240)
        blades = 18 * rng.standard_normal((height - horizon, width, 1), dtype=np.float32)
        pixels[horizon:] = np.array([70, 150, 55]) + blades
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if name == "sand":
        horizon = int(height * rng.uniform(0.2, 0.35))
        pixels = np.empty((height, width, 3), dtype=np.float32)
        pixels[:horizon] = (80, 140, 190)
        sand = 10 * rng.standard_normal((height - horizon, width, 1), dtype=np.float32)
        pixels[horizon:] = np.array([225, 200, 150], dtype=np.float32) + sand
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if name == "gradient":
        first, second = rng.integers(60, 230, size=(2, 3)).astype(np.float32)
        cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
        mix = (rows + cols) / 2
        return Image.fromarray((first + (second - first) * mix).astype(np.uint8))
    tone = rng.integers(170, 235, size=3)  # plain: a light flat colour
    return Image.new("RGB", (width, height), tuple(int(t) for t in tone))


def _shade(rgb: tuple[int, ...], factor: float) -> tuple[int, ...]:
    return tuple(int(min(255, c * factor)) for c in rgb)


def _ball(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=rgb, outline=_shade(rgb, 0.6), width=2)
    draw.ellipse((cx - r * 0.55, cy - r * 0.6, cx - r * 0.15, cy - r * 0.25), fill=_shade(rgb, 1.5))


def _box(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    s, d = r * 0.8, r * 0.35  # front face half-side, depth offset
    left, top, right, bottom = cx - s - d / 2, cy - s + d / 2, cx + s - d / 2, cy + s + d / 2
    draw.polygon(
        [(left, top), (left + d, top - d), (right + d, top - d), (right, top)], fill=_shade(rgb, 1.3)
    )
    draw.polygon(
        [(right, top), (right + d, top - d), (right + d, bottom - d), (right, bottom)], fill=_shade(rgb, 0.7)
    )
    draw.rectangle((left, top, right, bottom), fill=rgb, outline=_shade(rgb, 0.5), width=2)


def _tree(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    draw.rectangle((cx - r * 0.12, cy + r * 0.4, cx + r * 0.12, cy + r), fill=_BROWN)
    for level, width in ((-1.0, 0.55), (-0.55, 0.75), (-0.1, 0.95)):
        top = cy + r * level
        draw.polygon([(cx, top), (cx - r * width, top + r * 0.7), (cx + r * width, top + r * 0.7)], fill=rgb)


def _house(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    draw.rectangle(
        (cx - r * 0.75, cy - r * 0.1, cx + r * 0.75, cy + r), fill=rgb, outline=_shade(rgb, 0.5), width=2
    )
    draw.polygon(
        [(cx - r * 0.95, cy - r * 0.1), (cx, cy - r), (cx + r * 0.95, cy - r * 0.1)], fill=(120, 45, 40)
    )
    draw.rectangle((cx - r * 0.15, cy + r * 0.45, cx + r * 0.15, cy + r), fill=_BROWN)
    draw.rectangle((cx + r * 0.3, cy + r * 0.15, cx + r * 0.6, cy + r * 0.45), fill=(200, 230, 250))


def _car(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    draw.polygon(
        [
            (cx - r * 0.55, cy - r * 0.1),
            (cx - r * 0.35, cy - r * 0.55),
            (cx + r * 0.35, cy - r * 0.55),
            (cx + r * 0.6, cy - r * 0.1),
        ],
        fill=_shade(rgb, 0.85),
    )
    draw.rectangle((cx - r * 0.45, cy - r * 0.45, cx + r * 0.4, cy - r * 0.15), fill=(200, 230, 250))
    draw.rounded_rectangle((cx - r, cy - r * 0.15, cx + r, cy + r * 0.4), radius=r * 0.15, fill=rgb)
    for wx in (cx - r * 0.55, cx + r * 0.55):
        draw.ellipse((wx - r * 0.22, cy + r * 0.2, wx + r * 0.22, cy + r * 0.64), fill=_BLACK)


def _flower(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    head_y, petal = cy - r * 0.35, r * 0.28
    draw.line((cx, head_y, cx, cy + r), fill=(40, 130, 45), width=max(2, int(r * 0.08)))
    draw.ellipse((cx, cy + r * 0.3, cx + r * 0.4, cy + r * 0.5), fill=(40, 130, 45))
    for angle in np.linspace(0, 2 * np.pi, 6, endpoint=False):
        px, py = cx + np.cos(angle) * r * 0.35, head_y + np.sin(angle) * r * 0.35
        draw.ellipse((px - petal, py - petal, px + petal, py + petal), fill=rgb)
    centre = (120, 70, 20) if rgb[0] > 200 and rgb[1] > 180 else (250, 215, 40)
    draw.ellipse((cx - r * 0.18, head_y - r * 0.18, cx + r * 0.18, head_y + r * 0.18), fill=centre)


def _umbrella(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    draw.line((cx, cy - r * 0.3, cx, cy + r * 0.8), fill=_BLACK, width=max(2, int(r * 0.06)))
    draw.arc(
        (cx - r * 0.25, cy + r * 0.6, cx + 0.0, cy + r),
        start=0,
        end=180,
        fill=_BLACK,
        width=max(2, int(r * 0.06)),
    )
    draw.pieslice((cx - r, cy - r * 0.9, cx + r, cy + r * 0.3), start=180, end=360, fill=rgb)
    for x in np.linspace(cx - r, cx + r, 5)[1:-1]:
        draw.line((cx, cy - r * 0.85, x, cy - r * 0.3), fill=_shade(rgb, 0.6), width=2)


def _boat(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    draw.line((cx, cy - r, cx, cy + r * 0.3), fill=_BROWN, width=max(2, int(r * 0.05)))
    draw.polygon(
        [(cx + r * 0.05, cy - r * 0.95), (cx + r * 0.05, cy + r * 0.2), (cx + r * 0.7, cy + r * 0.2)],
        fill=_WHITE,
    )
    draw.polygon(
        [
            (cx - r, cy + r * 0.3),
            (cx + r, cy + r * 0.3),
            (cx + r * 0.7, cy + r * 0.75),
            (cx - r * 0.7, cy + r * 0.75),
        ],
        fill=rgb,
    )


def _fish(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    draw.polygon(
        [(cx + r * 0.5, cy), (cx + r, cy - r * 0.45), (cx + r, cy + r * 0.45)], fill=_shade(rgb, 0.75)
    )
    draw.ellipse((cx - r, cy - r * 0.45, cx + r * 0.65, cy + r * 0.45), fill=rgb)
    draw.ellipse((cx - r * 0.7, cy - r * 0.15, cx - r * 0.5, cy + r * 0.05), fill=_BLACK)


def _cup(draw: ImageDraw.ImageDraw, box: Box, rgb: tuple[int, ...]) -> None:
    cx, cy, r = box
    draw.ellipse(
        (cx + r * 0.35, cy - r * 0.35, cx + r * 0.95, cy + r * 0.35), outline=rgb, width=max(3, int(r * 0.14))
    )
    draw.polygon(
        [
            (cx - r * 0.7, cy - r * 0.6),
            (cx + r * 0.6, cy - r * 0.6),
            (cx + r * 0.45, cy + r * 0.7),
            (cx - r * 0.55, cy + r * 0.7),
        ],
        fill=rgb,
    )
    draw.ellipse((cx - r * 0.7, cy - r * 0.75, cx + r * 0.6, cy - r * 0.45), fill=_shade(rgb, 0.55))


_DRAW: dict[str, Callable[[ImageDraw.ImageDraw, Box, tuple[int, ...]], None]] = {
    "ball": _ball,
    "box": _box,
    "tree": _tree,
    "house": _house,
    "car": _car,
    "flower": _flower,
    "umbrella": _umbrella,
    "boat": _boat,
    "fish": _fish,
    "cup": _cup,
}
