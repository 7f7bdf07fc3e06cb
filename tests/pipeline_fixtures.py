"""A small, fully known candidate pool for the curation-job tests: real photos in WebDataset tars.

Every sample states what should happen to it (``expect``: kept, or the stage/reason that drops it),
under the options in ``POOL_OPTIONS``; the tests check the job against that, not against itself.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image

from tests.image_fixtures import (
    HTML_BYTES,
    encode,
    mate_photo_bytes,
    mate_photo_paths,
    png_header_only,
    skimage_photo,
)

QUERIES = ["landscape", "astronaut", "coffee", "cat", "rocket", "motorcycle", "camera", "hubble"]
CAP = 5
POOL_OPTIONS = [
    f"--per_query_cap={CAP}",
    "--max_images_per_alt_text=2",
    "--max_alt_texts_per_image=2",
    "--shard_size=4",
    "--v_tau=2",
    "--tokenizer_vocab_size=200",
    "--seed=7",
]
MATE_CAPTIONS = {
    "Aqua": "blue water landscape under a clear sky",
    "Blinds": "light through window blinds landscape view",
    "Dune": "sand dune landscape in the desert",
    "FreshFlower": "fresh flower landscape close up in spring",
    "Garden": "green garden landscape with tall trees",
    "GreenMeadow": "green meadow landscape on a sunny day",
    "LadyBird": "ladybird on a leaf in a landscape",
    "RainDrops": "rain drops on glass landscape photo",
    "Storm": "storm clouds over a dark landscape",
    "TwoWings": "two wings of a butterfly in a landscape",
    "Wood": "wood texture landscape of old trees",
    "YellowFlower": "yellow flower landscape in the morning",
}


@dataclass(frozen=True)
class Sample:
    name: str  # the sample's key inside its tar
    caption: str | None
    image: bytes | None
    expect: str  # "kept", "kept_or_over_cap", or "stage/reason"
    url: str = ""
    meta: bytes | None = None  # raw KEY.json bytes when it should be malformed


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    return encode(image.convert("RGB"), "JPEG", quality=quality)


@cache
def mate_small(name: str) -> bytes:
    """A mate-backgrounds photo at 640 px wide: real content, small enough for fast tests."""
    image = Image.open(io.BytesIO(mate_photo_bytes(f"{name}.jpg")))
    image.draft("RGB", (640, 640))
    return jpeg(image.convert("RGB").resize((640, round(640 * image.height / image.width))))


def pool_samples() -> list[Sample]:
    coffee = skimage_photo("coffee")
    samples = [
        Sample(f"mate{n}", caption, mate_small(n), "kept_or_over_cap") for n, caption in MATE_CAPTIONS.items()
    ]
    astronaut = jpeg(skimage_photo("astronaut"))
    rocket = jpeg(skimage_photo("rocket"))
    samples += [
        Sample("astronaut", "an astronaut in a white space suit", astronaut, "kept_or_exact"),
        Sample("astronaut2", "astronaut portrait with the american flag", astronaut, "kept_or_exact"),
        Sample("coffee", "a cup of coffee on a saucer", jpeg(coffee), "kept_or_near"),
        Sample("coffee_q40", "coffee cup seen from above", jpeg(coffee, quality=40), "kept_or_near"),
        Sample(
            "coffee_small",
            "small picture of coffee in a cup",
            jpeg(coffee.resize((360, 240))),
            "dedup/near_duplicate",
        ),
        Sample(
            "chelsea",
            "a tabby cat sitting near a wall",
            jpeg(skimage_photo("chelsea")),
            "dedup/eval_duplicate",
        ),
        Sample("rocket", "a rocket on the launch pad", rocket, "dedup/image_too_many_alt_texts"),
        Sample("rocket2", "the rocket before launch at dawn", rocket, "dedup/image_too_many_alt_texts"),
        Sample("rocket3", "space rocket standing tall and white", rocket, "dedup/image_too_many_alt_texts"),
        Sample("camera", "a man with a camera on a tripod", jpeg(skimage_photo("camera")), "kept"),
        Sample("moto", "a red motorcycle parked in a garage", jpeg(skimage_photo("motorcycle_left")), "kept"),
        Sample(
            "hubble", "galaxies in the hubble deep field", jpeg(skimage_photo("hubble_deep_field")), "kept"
        ),
        Sample(
            "truncated",
            "a broken coffee photo that was cut off",
            jpeg(coffee)[:3000],
            "image/image_truncated",
        ),
        Sample("html", "a coffee shop web page", HTML_BYTES, "image/image_undecodable"),
        Sample(
            "bomb", "a huge coffee poster print", png_header_only(30000, 30000), "image/image_too_many_pixels"
        ),
        Sample("tiny", "a tiny coffee cup drawing", jpeg(coffee.resize((150, 100))), "image/image_too_small"),
        Sample(
            "wide",
            "a wide coffee banner for a website",
            jpeg(coffee.resize((900, 250))),
            "image/image_bad_aspect",
        ),
        Sample("noimage", "a coffee sample with no picture", None, "image/image_missing"),
        Sample("filename", "IMG_2019.jpg", jpeg(coffee), "text/text_filename"),
        Sample("dimensions", "1920x1080", jpeg(coffee), "text/text_dimensions"),
        Sample("short", "coffee", jpeg(coffee), "text/text_too_short"),
        Sample(
            "nomatch", "the quick brown fox jumps over the lazy dog", jpeg(coffee), "match/no_query_match"
        ),
        Sample(
            "badjson", "a coffee with a broken json", jpeg(coffee), "read/row_unparseable", meta=b"{not json"
        ),
    ]
    shared = "beautiful sunset over the sea and a landscape"
    samples += [
        Sample(f"shared{i}", shared, jpeg(coffee), "shared_alt_text/text_shared_by_many_images")
        for i in range(3)
    ]
    return samples


def write_tar(path: Path, samples: list[Sample]) -> None:
    """An img2dataset-style shard: KEY.jpg, KEY.txt, KEY.json (url, caption, key, status, similarity)."""
    with tarfile.open(path, "w") as tar:
        for index, sample in enumerate(samples):
            url = sample.url or f"https://images.example.com/{sample.name}.jpg"
            meta = (
                sample.meta
                or json.dumps(
                    {
                        "url": url,
                        "caption": sample.caption,
                        "key": f"{index:09d}",
                        "status": "success",
                        "similarity": 0.3,
                    }
                ).encode()
            )
            members = [("json", meta)]
            if sample.caption is not None:
                members.append(("txt", sample.caption.encode()))
            if sample.image is not None:
                members.append(("jpg", sample.image))
            for extension, data in members:
                info = tarfile.TarInfo(f"{sample.name}.{extension}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@dataclass(frozen=True)
class Pool:
    tars: str  # glob of the input shards
    allowlist: Path
    eval_images: Path  # a folder: the job hashes it at launch into OUTPUT/eval_blocklist.json
    samples: list[Sample]

    def args(self, output: Path, *extra: str, report: bool = False) -> list[str]:
        return [
            f"--input={self.tars}",
            f"--allowlist={self.allowlist}",
            f"--eval_blocklist={self.eval_images}",
            f"--output={output}",
            *POOL_OPTIONS,
            *([] if report else ["--no_report"]),
            *extra,
        ]


def pool_at(root: Path) -> Pool:
    """The pool ``build_pool`` wrote under ``root``."""
    return Pool(str(root / "pool" / "*.tar"), root / "allowlist.json", root / "eval", pool_samples())


def build_pool(root: Path) -> Pool:
    """Writes the pool (two tars), the allowlist and an evaluation set holding 'chelsea' under ``root``."""
    assert mate_photo_paths(), "the tests need Debian's mate-backgrounds photos"
    samples = pool_samples()
    (root / "pool").mkdir(parents=True)
    half = len(samples) // 2
    write_tar(root / "pool" / "00000.tar", samples[:half])
    write_tar(root / "pool" / "00001.tar", samples[half:])
    (root / "allowlist.json").write_text(json.dumps(QUERIES))
    (root / "eval").mkdir()
    (root / "eval" / "chelsea.png").write_bytes(encode(skimage_photo("chelsea"), "PNG"))
    return pool_at(root)


def shared_test_root(tmp_path_factory: object) -> Path:
    """A directory every xdist worker of this session sees, so the pool and the reference run are made once.

    Under xdist each worker's basetemp is ``<session>/popen-gwN``; without it, basetemp is the session's.
    """
    base = tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_pool(root: Path) -> Pool:
    return pool_at(build_once(root, "curation-pool", build_pool))


def reference_run(pool: Pool, root: Path) -> Path:
    """The job on the pool with no failure, in-process, report included: made once per test session."""
    from pipelines.curate import main

    def run(output: Path) -> None:
        assert main(pool.args(output, report=True)) == 0

    return build_once(root, "curation-in-process", run)


def build_once(root: Path, name: str, build: Callable[[Path], object]) -> Path:
    """``root/name`` built by ``build`` exactly once, even when several pytest-xdist workers ask for it.

    ``root`` must be shared by the workers (the parent of each worker's basetemp): the first worker
    builds under a file lock, the others wait and reuse, so a heavy curation run is not repeated per worker.
    """
    target = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (root / f"{name}.done").exists():
                build(target)
                (root / f"{name}.done").write_text("")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target
