"""SigLIP objective: pairwise sigmoid loss with learnable scale and bias (Zhai et al. 2023).

Distributed form: the simple all-gather variant (gather text features with gradient; local_loss=True
computes this rank's image rows against all texts, otherwise every rank computes the full matrix),
not the paper's ring of ppermute chunks. Memory is the same as CLIP's local loss.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.objectives.base import PairwiseObjective, retrieval_accuracy
from trainer.objectives.functional import siglip_loss


class SiglipObjective(PairwiseObjective):
    """Parameters `logit_scale` (t' = log t, init log 10) and `logit_bias` (b, init -10)."""

    def __init__(
        self, scale_init: float, bias_init: float, local_loss: bool = False, gather_with_grad: bool = True
    ) -> None:
        super().__init__(local_loss, gather_with_grad)
        self.logit_scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.logit_bias = nn.Parameter(torch.tensor(float(bias_init)))

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        pair = self.gather(outputs, need_all_images=False)
        scale = self.logit_scale.exp()
        loss = siglip_loss(
            pair.image,
            pair.text,
            scale,
            self.logit_bias,
            all_text_features=pair.all_text,
            label_offset=pair.label_offset,
        )
        return {
            "loss": loss,
            "logit_scale": scale.detach(),
            "logit_bias": self.logit_bias.detach(),
            "accuracy": retrieval_accuracy(pair),
        }
