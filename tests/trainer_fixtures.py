"""Small dataset directories in exactly the curation output contract, for the trainer's tests.

``make_dataset`` renders synthetic pictures of a few objects (a red circle is a "ball", a blue
square a "box", …) with PIL, writes them with webdataset's ``TarWriter`` as ``KEY.jpg`` /
``KEY.txt`` / ``KEY.json`` into ``NNNNN.tar`` shards, and adds ``manifest.json``, ``sizes.json``,
``vocabulary.json`` (real WordNet first-sense ids of the object nouns) and a WordPiece
``tokenizer.json`` trained with ``tokenizers`` on the captions. One sample can be given a
truncated JPEG, the failure the loader must skip and count. ``make_image_folder`` writes a
held-out ImageFolder (``root/<label>/*.jpg``) of the same objects for zero-shot evaluation.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imagehash
import torch
import webdataset as wds
from PIL import Image, ImageDraw
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from contract.vocabulary import SynsetEntry, Vocabulary, save_json
from filters.vocabulary import count_synsets

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (235, 200, 20)}
BACKGROUNDS = {"white": (250, 250, 250), "grey": (170, 170, 170), "black": (15, 15, 15)}
# object noun -> (shape drawn, WordNet first noun sense as n%08d)
OBJECTS = {
    "ball": ("circle", "n02778669"),  # ball.n.01
    "box": ("square", "n02883344"),  # box.n.01
    "tent": ("triangle", "n04411264"),  # tent.n.01
    "wheel": ("ring", "n04574999"),  # wheel.n.01
    "cross": ("cross", "n03135532"),  # cross.n.01
}
BACKGROUND_SYNSET = "n04921417"  # background.n.01
# WordNet 3.0 name and lemmas of each synset above (what filters.vocabulary.build_vocabulary looks up;
# written out because loading WordNet costs seconds per fixture).
SYNSET_NAMES = {
    "n02778669": ("ball.n.01", ("ball",)),
    "n02883344": ("box.n.01", ("box",)),
    "n04411264": ("tent.n.01", ("tent", "collapsible_shelter")),
    "n04574999": ("wheel.n.01", ("wheel",)),
    "n03135532": ("cross.n.01", ("cross",)),
    "n04921417": ("background.n.01", ("background",)),
}
COMMON = ["ball", "box", "tent", "wheel"]  # "cross" is the rare class that a V_tau prunes
# Like real alt-texts, captions always name the object and only sometimes its colour or backdrop.
CAPTIONS = [
    "a {obj}",
    "a {obj} on a {bg} background",
    "photo of a {obj}",
    "the {colour} {obj}",
]


@dataclass(frozen=True)
class FixtureSample:
    key: str
    obj: str
    colour: str
    caption: str
    synsets: tuple[str, ...]


def render(obj: str, colour: str, background: str, size: int, rng: random.Random) -> Image.Image:
    """One picture of ``obj``: the object's shape in ``colour`` at a random place and scale."""
    image = Image.new("RGB", (size, size), BACKGROUNDS[background])
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.3, 0.42) * size
    cx, cy = (size / 2 + rng.uniform(-0.08, 0.08) * size for _ in range(2))
    fill = COLOURS[colour]
    shape = OBJECTS[obj][0]
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=max(2, int(radius / 4)))
        for angle in (0.0, math.pi / 2):
            dx, dy = radius * math.cos(angle), radius * math.sin(angle)
            draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=fill, width=2)
    else:
        bar = radius / 3
        draw.rectangle((cx - bar, cy - radius, cx + bar, cy + radius), fill=fill)
        draw.rectangle((cx - radius, cy - bar, cx + radius, cy + bar), fill=fill)
    return image


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def plan_samples(n_samples: int, seed: int, rare_fraction: float = 0.06) -> list[FixtureSample]:
    """Objects, colours and captions for ``n_samples`` samples; ``cross`` is rare."""
    rng = random.Random(seed)
    samples = []
    for index in range(n_samples):
        obj = "cross" if rng.random() < rare_fraction else rng.choice(COMMON)
        colour = rng.choice(sorted(COLOURS))
        template = rng.choice(CAPTIONS)
        caption = template.format(colour=colour, obj=obj, bg=rng.choice(sorted(BACKGROUNDS)))
        synsets = (OBJECTS[obj][1],) + ((BACKGROUND_SYNSET,) if "background" in caption else ())
        samples.append(FixtureSample(f"s{seed:03d}{index:06d}", obj, colour, caption, synsets))
    return samples


def train_tokenizer(captions: list[str], vocab_size: int = 1000) -> Tokenizer:
    """A BERT-style WordPiece tokenizer trained on ``captions``: ``[CLS] … [SEP]``, ``[PAD]`` = 0.

    ``WordPieceTrainer`` breaks frequency ties in hash-map order, which changes between processes,
    so the intermediate pieces it learns (and every id) differ from run to run. The fixture keeps
    what is stable, the learned whole words and the character alphabet, numbered in sorted order.
    """
    draft = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    draft.normalizer = normalizers.BertNormalizer(lowercase=True)
    draft.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    draft.train_from_iterator(
        captions, trainer=trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS)
    )
    words = {
        w
        for c in captions
        for w, _ in draft.pre_tokenizer.pre_tokenize_str(draft.normalizer.normalize_str(c))
    }
    learned = set(draft.get_vocab()) - set(SPECIALS)
    if not words <= learned:
        raise ValueError(f"vocab_size {vocab_size} is too small to learn every caption word")
    pieces = sorted(piece for piece in learned if piece in words or len(piece.removeprefix("##")) == 1)
    vocab = {token: index for index, token in enumerate(SPECIALS + pieces)}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = draft.normalizer
    tokenizer.pre_tokenizer = draft.pre_tokenizer
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return tokenizer


def fixture_vocabulary(samples: list[FixtureSample], v_tau: int) -> Vocabulary:
    """The vocabulary curate would write: counts, WordNet names and lemmas, ``kept`` = count >= v_tau."""
    counts = count_synsets(sample.synsets for sample in samples)
    entries = [
        SynsetEntry(wnid, SYNSET_NAMES[wnid][0], count, SYNSET_NAMES[wnid][1], count >= v_tau)
        for wnid, count in counts.items()
    ]
    return Vocabulary.of(v_tau, entries)


def sample_json(sample: FixtureSample, data: bytes, image: Image.Image) -> dict:
    return {
        "key": sample.key,
        "url": f"https://example.com/{sample.key}.jpg",
        "caption": sample.caption,
        "width": image.width,
        "height": image.height,
        "original_width": image.width,
        "original_height": image.height,
        "sha256": hashlib.sha256(data).hexdigest(),
        "phash": str(imagehash.phash(image)),
        "queries": [sample.obj],
        "credited_query": sample.obj,
        "synsets": list(sample.synsets),
    }


def make_dataset(
    directory: str | Path,
    n_samples: int = 96,
    *,
    shard_sizes: list[int] | None = None,
    samples_per_shard: int = 32,
    image_size: int = 48,
    seed: int = 0,
    corrupt_key_index: int | None = 5,
    v_tau: int = 1,
) -> Path:
    """Writes a dataset directory; returns it. ``shard_sizes`` makes uneven shards."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    samples = plan_samples(n_samples, seed)
    sizes = shard_sizes or [
        min(samples_per_shard, n_samples - start) for start in range(0, n_samples, samples_per_shard)
    ]
    if sum(sizes) != n_samples:
        raise ValueError(f"shard sizes {sizes} do not add up to {n_samples}")
    rng = random.Random(seed + 1)
    shards, start = [], 0
    for index, size in enumerate(sizes):
        name = f"{index:05d}.tar"
        with wds.TarWriter(str(directory / name)) as sink:
            for position in range(start, start + size):
                sample = samples[position]
                image = render(sample.obj, sample.colour, rng.choice(sorted(BACKGROUNDS)), image_size, rng)
                data = jpeg_bytes(image)
                record = sample_json(sample, data, image)
                if position == corrupt_key_index:
                    data = data[: len(data) // 3]  # truncated JPEG: opens, fails on full decode
                sink.write({"__key__": sample.key, "jpg": data, "txt": sample.caption, "json": record})
        payload = (directory / name).read_bytes()
        shards.append(
            {
                "name": name,
                "samples": size,
                "bytes": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        )
        start += size
    train_tokenizer([sample.caption for sample in samples]).save(str(directory / "tokenizer.json"))
    save_json(fixture_vocabulary(samples, v_tau), directory / "vocabulary.json")
    (directory / "sizes.json").write_text(json.dumps({shard["name"]: shard["samples"] for shard in shards}))
    manifest = {
        "format_version": 1,
        "shards": shards,
        "total_samples": n_samples,
        "total_bytes": sum(shard["bytes"] for shard in shards),
        "config": {"fixture": "tests/trainer_fixtures.py", "image_size": image_size},
        "versions": {"webdataset": wds.__version__},
        "seed": seed,
        "sizes": "sizes.json",
        "vocabulary": "vocabulary.json",
        "tokenizer": "tokenizer.json",
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return directory


def make_image_folder(
    root: str | Path,
    per_class: int = 8,
    labels: list[str] | None = None,
    image_size: int = 48,
    seed: int = 99,
) -> Path:
    """A held-out ImageFolder ``root/<label>/NNN.jpg`` of the fixture objects in random colours."""
    root = Path(root)
    rng = random.Random(seed)
    for label in labels or COMMON:
        (root / label).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            colour, background = rng.choice(sorted(COLOURS)), rng.choice(sorted(BACKGROUNDS))
            (root / label / f"{index:03d}.jpg").write_bytes(
                jpeg_bytes(render(label, colour, background, image_size, rng))
            )
    return root


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """``count`` intra-op threads inside the block: the suite runs two pytest workers on two cores,
    and more threads per worker would only fight each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
