"""The demo's candidate pool: ``generate_pool(out_dir, n, seed, base_url)`` writes it, the same bytes every time.

Layout under ``out_dir``::

    images/             the files the demo server serves at ``{base_url}/images/<name>``
    candidates.parquet  the candidate table: url, caption, source, truth (row groups of 500)
    candidates.jsonl    the same rows as JSON lines
    allowlist.json      the query list (JSON list of strings)
    eval/               evaluation images that also occur in the pool (for the eval blocklist)
    pool.json           seed, size, base_url and how many rows of each ``source``

``source`` says what each row is, so the funnel can be read against it: ``scene`` (a rendered object
with a realistic alt-text; ``truth`` is "<colour> <kind>"), ``photo`` (a real photo), ``junk_text/<kind>``
(a good image with a junk alt-text), ``shared_alt_text`` (one alt-text on 12 images), ``exact_duplicate``,
``near_duplicate`` (re-encoded and resized), ``many_alt_texts`` (one image at 8 URLs with 8 alt-texts),
``eval_overlap``, ``too_small``, ``too_wide``, ``truncated_jpeg``, ``html_file``, ``decompression_bomb``,
``zero_bytes``, ``dead_url``, and one row per pathological server endpoint or bad URL (``ENDPOINT_ROWS``).
Object frequencies follow a Zipf-like long tail (ball most common, cup least) so balancing has work to do.
"""

from __future__ import annotations

import io
import itertools
import json
import random
import struct
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from demo import captions
from demo.photos import iter_photos, require_photo_sources
from demo.scenes import BACKGROUNDS, CLASHES, COLOURS, KINDS, render_scene

DEFAULT_SIZE = 2000
MIN_SIZE = 120
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
TABLE_FILE = "candidates.parquet"
JSONL_FILE = "candidates.jsonl"
ALLOWLIST_FILE = "allowlist.json"
SUMMARY_FILE = "pool.json"
IMAGES_DIR = "images"
EVAL_DIR = "eval"
SCHEMA = pa.schema(
    [("url", pa.string()), ("caption", pa.string()), ("source", pa.string()), ("truth", pa.string())]
)
SHARED_ALT_TEXT_IMAGES = 12  # ALIGN drops an alt-text shared by more than 10 images
MANY_ALT_TEXTS = 8
# (url: a server path, or a full URL when it starts with a scheme or is empty; source; caption)
ENDPOINT_ROWS: tuple[tuple[str, str, str], ...] = (
    ("/html", "endpoint/html", "a red ball on the grass"),
    ("/html", "endpoint/html", "blue car parked on the beach"),
    ("/huge", "endpoint/huge", "a giant yellow umbrella on the beach"),
    ("/huge-stream", "endpoint/huge_stream", "huge orange boat in the sand"),
    ("/redirect-loop", "endpoint/redirect_loop", "a purple house under a blue sky"),
    ("/redirect-to-metadata", "endpoint/redirect_to_metadata", "a green box on a white table"),
    ("/slow", "endpoint/slow", "a pink fish on a plain background"),
    ("/robots", "endpoint/robots_noai", "red flower in a green field"),
    ("/robots", "endpoint/robots_noai", "an orange tree against the sky"),
    ("/flaky/1", "endpoint/flaky", "a blue cup on a white table"),
    ("/flaky/2", "endpoint/flaky", "a yellow ball on the lawn"),
    ("/dead", "endpoint/dead", "a pink house on the beach"),
    ("/reset", "endpoint/reset", "a purple ball against the sky"),
    ("http://127.0.0.1:9/ball.jpg", "endpoint/connection_refused", "a red ball on the lawn"),
    ("ftp://example.com/pictures/car.jpg", "bad_url/unsupported_scheme", "a green car on the beach"),
    ("file:///etc/hostname", "bad_url/file_url", "a yellow tree in a green field"),
    ("", "bad_url/missing", "an orange fish in the sky"),
)
_FRACTIONS = {  # share of the pool (at least one row each)
    "junk_text": 0.06,
    "exact_duplicate": 0.03,
    "near_duplicate": 0.03,
    "too_small": 0.02,
    "too_wide": 0.02,
    "dead_url": 0.015,
    "redirect_ok": 0.005,
    "truncated_jpeg": 0.004,
    "html_file": 0.004,
    "zero_bytes": 0.003,
    "decompression_bomb": 0.002,
}
_EVAL_OVERLAP = 4  # the first three are exact copies in eval/, the last a re-encoded copy
_PNG_SHARE = 0.05


def generate_pool(
    out_dir: str | Path, n: int = DEFAULT_SIZE, seed: int = 0, base_url: str = DEFAULT_BASE_URL
) -> Path:
    """Writes the pool of exactly ``n`` candidates under ``out_dir``; returns ``out_dir`` as a Path.

    Curate it with the address guard on (``--allowed_networks=127.0.0.1/32``, not
    ``--allow_private_addresses``): one row redirects to the cloud metadata address.
    """
    if n < MIN_SIZE:
        raise ValueError(f"pool size must be at least {MIN_SIZE} (it has a fixed set of special rows)")
    root = Path(out_dir)
    (root / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    (root / EVAL_DIR).mkdir(exist_ok=True)
    builder = _PoolBuilder(root, seed, base_url.rstrip("/"))
    builder.build(n)
    builder.write_tables()
    return root


class _PoolBuilder:
    def __init__(self, root: Path, seed: int, base_url: str) -> None:
        self.root = root
        self.seed = seed
        self.base_url = base_url
        self.rng = random.Random(seed)
        self.rows: list[dict[str, str]] = []
        self.scenes: list[dict[str, Any]] = []  # what each plain scene row shows, to derive duplicates from
        self.eval_images: list[str] = []
        self.photo_names: list[str] = []
        self._files = 0
        kinds = list(KINDS)
        self._kind_weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(kinds))]

    def build(self, n: int) -> None:
        require_photo_sources()
        counts = {name: max(1, round(n * share)) for name, share in _FRACTIONS.items()}
        photos = list(itertools.islice(iter_photos(), max(6, round(n * 0.025))))
        fixed = (
            sum(counts.values()) + len(photos) + len(ENDPOINT_ROWS) + SHARED_ALT_TEXT_IMAGES + MANY_ALT_TEXTS
        )
        for _ in range(n - fixed):
            self._scene_row()
        self.photo_names = [photo.name for photo in photos]
        for photo in photos:
            name = self._save(photo.image, "jpg")
            self._row(f"/images/{name}", photo.caption, "photo")
        self._eval_overlap()
        self._specials(counts)
        self.rng.shuffle(self.rows)

    def _pick_scene(self) -> dict[str, Any]:
        kind = self.rng.choices(list(KINDS), weights=self._kind_weights)[0]
        colour = self.rng.choice(list(COLOURS))
        background = self.rng.choice([b for b in BACKGROUNDS if (colour, b) not in CLASHES])
        size = (self.rng.randint(256, 400), self.rng.randint(256, 400))
        return {
            "kind": kind,
            "colour": colour,
            "background": background,
            "seed": self.rng.randrange(1 << 31),
            "size": size,
        }

    def _render(self, scene: dict[str, Any]) -> Image.Image:
        return render_scene(scene["kind"], scene["colour"], scene["background"], scene["seed"], scene["size"])

    def _scene_row(self) -> None:
        scene = self._pick_scene()
        extension = "png" if self.rng.random() < _PNG_SHARE else "jpg"
        scene["file"] = self._save(self._render(scene), extension)
        caption = captions.scene_caption(scene["kind"], scene["colour"], scene["background"], self.rng)
        scene["row"] = self._row(f"/images/{scene['file']}", caption, "scene", _truth(scene))
        self.scenes.append(scene)

    def _eval_overlap(self) -> None:
        for index, scene in enumerate(self.rng.sample(self.scenes, _EVAL_OVERLAP)):
            target = self.root / EVAL_DIR / f"eval-{index}.jpg"
            if index < _EVAL_OVERLAP - 1:
                target = target.with_suffix(Path(scene["file"]).suffix)
                target.write_bytes((self.root / IMAGES_DIR / scene["file"]).read_bytes())
            else:
                target.write_bytes(_jpeg(self._render(scene), quality=75))
            scene["row"]["source"] = "eval_overlap"
            self.eval_images.append(target.name)

    def _specials(self, counts: dict[str, int]) -> None:
        rng = self.rng
        for index in range(counts["junk_text"]):
            junk = captions.JUNK_KINDS[index % len(captions.JUNK_KINDS)]
            scene = self._fresh_scene()
            caption = captions.junk_caption(junk, scene["kind"], scene["colour"], rng)
            self._row(f"/images/{scene['file']}", caption, f"junk_text/{junk}", _truth(scene))
        for _ in range(SHARED_ALT_TEXT_IMAGES):
            scene = self._fresh_scene(kind="ball")
            self._row(f"/images/{scene['file']}", captions.SHARED_ALT_TEXT, "shared_alt_text", _truth(scene))
        stock = self._fresh_scene()
        for ref in range(MANY_ALT_TEXTS):
            caption = captions.scene_caption(stock["kind"], stock["colour"], stock["background"], rng)
            self._row(f"/images/{stock['file']}?ref={ref}", caption, "many_alt_texts", _truth(stock))
        for _ in range(counts["exact_duplicate"]):
            original = rng.choice(self.scenes)
            data = (self.root / IMAGES_DIR / original["file"]).read_bytes()
            name = self._save_bytes(data, Path(original["file"]).suffix.lstrip("."))
            self._scene_caption_row(name, original, "exact_duplicate")
        for _ in range(counts["near_duplicate"]):
            original = rng.choice(self.scenes)
            image = self._render(original)
            image = image.resize(
                (round(image.width * 0.9), round(image.height * 0.9)), Image.Resampling.BILINEAR
            )
            self._scene_caption_row(
                self._save_bytes(_jpeg(image, quality=70), "jpg"), original, "near_duplicate"
            )
        for _ in range(counts["too_small"]):
            scene = {**self._pick_scene(), "size": (150, rng.randint(150, 190))}
            self._scene_caption_row(self._save(self._render(scene), "jpg"), scene, "too_small")
        for index in range(counts["too_wide"]):
            scene = {**self._pick_scene(), "size": (1200, 300) if index % 2 == 0 else (300, 1000)}
            self._scene_caption_row(self._save(self._render(scene), "jpg"), scene, "too_wide")
        for index in range(counts["dead_url"]):
            scene = self._pick_scene()
            self._scene_caption_row(f"gone-{index:04d}.jpg", scene, "dead_url")
        for _ in range(counts["redirect_ok"]):
            original = rng.choice(self.scenes)
            path = f"/redirect?to=/images/{original['file']}"
            self._row(path, captions.scene_caption(original["kind"], original["colour"], original["background"], rng),
                      "redirect_ok", _truth(original))  # fmt: skip
        self._broken_files(counts)
        for url, source, caption in ENDPOINT_ROWS:
            self._row(url, caption, source)

    def _broken_files(self, counts: dict[str, int]) -> None:
        for _ in range(counts["truncated_jpeg"]):
            scene = self._pick_scene()
            data = _jpeg(self._render(scene), quality=90)
            self._scene_caption_row(
                self._save_bytes(data[: len(data) * 2 // 5], "jpg"), scene, "truncated_jpeg"
            )
        for _ in range(counts["html_file"]):
            page = b"<!DOCTYPE html><html><body><h1>404 - image not found</h1></body></html>\n"
            self._scene_caption_row(self._save_bytes(page, "jpg"), self._pick_scene(), "html_file")
        for _ in range(counts["zero_bytes"]):
            self._scene_caption_row(self._save_bytes(b"", "jpg"), self._pick_scene(), "zero_bytes")
        for _ in range(counts["decompression_bomb"]):
            self._scene_caption_row(
                self._save_bytes(_bomb_png(60_000, 60_000), "png"), self._pick_scene(), "decompression_bomb"
            )

    def _fresh_scene(self, kind: str | None = None) -> dict[str, Any]:
        scene = self._pick_scene()
        if kind is not None:
            scene["kind"] = kind
        scene["file"] = self._save(self._render(scene), "jpg")
        return scene

    def _scene_caption_row(self, name: str, scene: dict[str, Any], source: str) -> None:
        caption = captions.scene_caption(scene["kind"], scene["colour"], scene["background"], self.rng)
        self._row(f"/images/{name}", caption, source, _truth(scene))

    def _row(self, path: str, caption: str, source: str, truth: str = "") -> dict[str, str]:
        url = self.base_url + path if path.startswith("/") else path
        row = {"url": url, "caption": caption, "source": source, "truth": truth}
        self.rows.append(row)
        return row

    def _save(self, image: Image.Image, extension: str) -> str:
        if extension == "png":
            out = io.BytesIO()
            image.save(out, format="PNG")
            return self._save_bytes(out.getvalue(), "png")
        return self._save_bytes(_jpeg(image, quality=90), "jpg")

    def _save_bytes(self, data: bytes, extension: str) -> str:
        name = f"{self._files:05d}.{extension}"
        self._files += 1
        (self.root / IMAGES_DIR / name).write_bytes(data)
        return name

    def write_tables(self) -> None:
        table = pa.Table.from_pylist(self.rows, schema=SCHEMA)
        pq.write_table(table, self.root / TABLE_FILE, row_group_size=500)
        lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in self.rows)
        (self.root / JSONL_FILE).write_text("".join(lines), encoding="utf-8")
        allowlist = json.dumps(captions.allowlist(), indent=0, ensure_ascii=False) + "\n"
        (self.root / ALLOWLIST_FILE).write_text(allowlist, encoding="utf-8")
        summary = {
            "seed": self.seed,
            "size": len(self.rows),
            "base_url": self.base_url,
            "sources": dict(sorted(Counter(row["source"] for row in self.rows).items())),
            "kinds": {kind: sense for kind, sense in KINDS.items()},
            "colours": list(COLOURS),
            "eval_images": self.eval_images,
            "photos": self.photo_names,  # which real photos went in (their sources are required)
        }
        (self.root / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")


def _truth(scene: dict[str, Any]) -> str:
    return f"{scene['colour']} {scene['kind']}"


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` × ``height`` pixels: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    body = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
