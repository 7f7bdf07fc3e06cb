"""BatchNorm statistics recomputed from data before evaluation ("precise BN").

EfficientNet keeps TF's BatchNorm momentum (0.01): after a short run its running statistics
still mix in the first, untrained steps, and eval-mode features collapse even while the
training loss is low. ``recalibrate_batchnorm`` resets the statistics and averages them over
a few batches of (training) images with ``torch.optim.swa_utils.update_bn``; models without
BatchNorm are left untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from trainer.data.transforms import normalize_images


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


class _ImageTower(nn.Module):
    """The image path only, so two-tower models run without tokens."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(images)


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, uint8_batches: Iterable[torch.Tensor], device: torch.device
) -> int:
    """Recomputes BatchNorm running statistics over ``uint8_batches``; returns the images used."""
    if not has_batchnorm(model):
        return 0
    batches = [normalize_images(batch.to(device)) for batch in uint8_batches]
    update_bn(batches, _ImageTower(model), device=device)
    model.eval()
    return sum(len(batch) for batch in batches)
