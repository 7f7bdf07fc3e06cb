"""A small ImageFolder reader: ``root/<class name>/*.jpg`` → (path, class index), classes sorted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from trainer.data.samples import DECODE_ERRORS
from trainer.data.transforms import eval_pil

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class ImageFolder:
    root: Path
    classes: tuple[str, ...]
    items: tuple[tuple[Path, int], ...]

    @property
    def labels(self) -> list[str]:
        """Class names as prompts read them: underscores become spaces."""
        return [name.replace("_", " ") for name in self.classes]


def read_image_folder(root: str | Path) -> ImageFolder:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {root} does not exist: pass a directory of <class>/<image> files"
        )
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    items = tuple(
        (path, index)
        for index, name in enumerate(classes)
        for path in sorted((root / name).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    )
    if not items:
        raise FileNotFoundError(f"{root} holds no images in class subfolders (root/<class>/*.jpg)")
    return ImageFolder(root, classes, items)


def image_folder_batches(
    folder: ImageFolder, image_size: int, batch_size: int, failures: dict[str, int]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 images [B, 3, S, S], class indices [B]); unreadable files are counted and skipped."""
    images, targets = [], []
    for path, target in folder.items:
        try:
            with Image.open(path) as image:
                images.append(eval_pil(image, image_size))
        except DECODE_ERRORS:
            failures["image_decode_error"] = failures.get("image_decode_error", 0) + 1
            continue
        targets.append(target)
        if len(images) == batch_size:
            yield torch.stack(images), torch.tensor(targets)
            images, targets = [], []
    if images:
        yield torch.stack(images), torch.tensor(targets)
