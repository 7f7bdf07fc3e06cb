"""ALIGN objective: normalised softmax both ways, learnable temperature, label smoothing (Jia et al. 2021)."""

from __future__ import annotations

import torch
from torch import nn

from trainer.objectives.base import PairwiseObjective, retrieval_accuracy
from trainer.objectives.functional import align_loss


class AlignObjective(PairwiseObjective):
    """Parameter `temperature` divides the cosine similarities; initialised to 1.0, floored at temperature_min.

    `reduction`: "sum" of the two directions (the paper) or their "mean" (HF transformers' AlignModel).
    """

    flips_images = True  # Jia et al. 2021: random crop and horizontal flip

    def __init__(
        self,
        temperature_init: float,
        temperature_min: float,
        label_smoothing: float,
        local_loss: bool = False,
        gather_with_grad: bool = True,
        reduction: str = "sum",
    ) -> None:
        super().__init__(local_loss, gather_with_grad)
        self.reduction = reduction
        self.temperature = nn.Parameter(torch.tensor(float(temperature_init)))
        self.temperature_min = temperature_min
        self.label_smoothing = label_smoothing

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            self.temperature.clamp_(min=self.temperature_min)
        pair = self.gather(outputs)
        loss = align_loss(
            pair.image,
            pair.text,
            self.temperature,
            self.label_smoothing,
            reduction=self.reduction,
            all_image_features=pair.all_image,
            all_text_features=pair.all_text,
            label_offset=pair.label_offset,
        )
        return {"loss": loss, "temperature": self.temperature.detach(), "accuracy": retrieval_accuracy(pair)}
