"""A new classifier head for a target label set, fitted on a few labelled images with the image tower
frozen: Transfer Init (CatLIP, Mehta et al. 2024, §4: the mapped synsets' rows of the trained
classifier) against ``nn.Linear``'s random init on the same budget.

``head_learning_curves`` fits each head with full-batch AdamW steps on the few-shot ImageFolder and
scores top-1 on the test ImageFolder before the first step and after every step.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.data.transforms import normalize_images
from trainer.eval.catlip import averaging_matrix, label_mappings, transfer_init
from trainer.eval.image_folder import ImageFolder, image_folder_batches
from trainer.eval.loading import TrainedModel


def head_learning_curves(
    trained: TrainedModel,
    train_folder: ImageFolder,
    test_folder: ImageFolder,
    steps: int = 5,
    lr: float = 3e-3,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Test top-1 after 0..``steps`` head steps, for ``"transfer_init"`` and ``"random"``.

    The model's own classifier and ``requires_grad`` flags are restored afterwards.
    """
    model = trained.model
    size = trained.config.vision.image_size
    images, targets = folder_tensors(train_folder, size)
    test_images, test_targets = folder_tensors(test_folder, size)
    classes = trained.vocabulary
    matrix = averaging_matrix(label_mappings(train_folder.labels, classes), classes)
    original, trainable = model.classifier, [p.requires_grad for p in model.parameters()]
    heads = {"transfer_init": transfer_init(original, matrix, seed)}
    torch.manual_seed(seed)
    heads["random"] = nn.Linear(original.in_features, len(train_folder.classes))
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    curves: dict[str, list[float]] = {}
    try:
        for name, head in heads.items():
            model.classifier = head
            optimizer = torch.optim.AdamW(head.parameters(), lr=lr)
            curves[name] = [head_accuracy(model, test_images, test_targets)]
            for _ in range(steps):
                loss = nn.functional.cross_entropy(model(images)["logits"], targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                curves[name].append(head_accuracy(model, test_images, test_targets))
    finally:
        model.classifier = original
        for parameter, flag in zip(model.parameters(), trainable):
            parameter.requires_grad_(flag)
    return curves


def folder_tensors(folder: ImageFolder, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of ``folder``, resized and centre-cropped to ``size`` and normalised, with its class."""
    batches = list(image_folder_batches(folder, size, 1024, {}))
    return normalize_images(torch.cat([b[0] for b in batches])), torch.cat([b[1] for b in batches])


@torch.no_grad()
def head_accuracy(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> float:
    return (model(images)["logits"].argmax(dim=1) == targets).float().mean().item()
