"""The Objective interface the training loop calls, and the shared part of the pairwise objectives.

`objective(outputs, batch) -> {"loss": scalar, **metrics}`: `outputs` is the model's forward dict,
`batch` the loader's dict ("image", "tokens", "targets", "key"). Metric values are detached tensors
that `float()` accepts. Learnable temperature / scale / bias live on the objective as nn.Parameters;
the loop optimises them with the model (they are 0-d, so they fall under "no weight decay") and, in
DDP, must be averaged across ranks like the model's: wrap model and objective in one DDP module.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.objectives.gather import GatheredPair, gather_pair


class Objective(nn.Module):
    """Base class: subclasses implement forward(outputs, batch) -> dict with "loss".

    What the loop asks of an objective, as class attributes (known from the name alone, before the
    module is built): ``needs_text`` (a text tower and tokens), ``pairwise`` (in-batch negatives, so
    accumulation caches features for full-batch negatives), ``flips_images`` (the paper trains with
    random horizontal flips: ALIGN)."""

    needs_text: bool = True
    pairwise: bool = False
    flips_images: bool = False

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class PairwiseObjective(Objective):
    """Image-text objectives over a similarity matrix; gathers features across ranks when distributed."""

    needs_text = True
    pairwise = True

    def __init__(self, local_loss: bool, gather_with_grad: bool) -> None:
        super().__init__()
        self.local_loss = local_loss
        self.gather_with_grad = gather_with_grad

    def gather(self, outputs: dict[str, torch.Tensor], need_all_images: bool = True) -> GatheredPair:
        if "text_features" not in outputs:
            raise ValueError(f"{type(self).__name__} needs text_features: call the model with tokens")
        return gather_pair(
            outputs["image_features"],
            outputs["text_features"],
            local_loss=self.local_loss,
            with_grad=self.gather_with_grad,
            need_all_images=need_all_images,
        )


def retrieval_accuracy(pair: GatheredPair) -> torch.Tensor:
    """Fraction of this rank's image rows whose most similar text column is their own caption."""
    with torch.no_grad():
        columns = pair.text if pair.all_text is None else pair.all_text
        best = (pair.image @ columns.T).argmax(dim=1)
        labels = torch.arange(pair.image.shape[0], device=best.device) + pair.label_offset
        return (best == labels).float().mean()
