"""CLIP objective: symmetric InfoNCE with a learnable logit scale (Radford et al. 2021)."""

from __future__ import annotations

import torch
from torch import nn

from trainer.objectives.base import PairwiseObjective, retrieval_accuracy
from trainer.objectives.functional import clip_loss


class ClipObjective(PairwiseObjective):
    """Parameter `logit_scale` is the log of the multiplier, initialised to log(1/0.07).

    It is clamped in place to logit_scale_max = log(100) before each use; this is open_clip's
    after-step clamp, moved here so the shared loop needs no objective-specific hook.
    """

    def __init__(
        self,
        logit_scale_init: float,
        logit_scale_max: float,
        local_loss: bool = False,
        gather_with_grad: bool = True,
    ) -> None:
        super().__init__(local_loss, gather_with_grad)
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))
        self.logit_scale_max = logit_scale_max

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            self.logit_scale.clamp_(max=self.logit_scale_max)
        pair = self.gather(outputs)
        scale = self.logit_scale.exp()
        loss = clip_loss(
            pair.image,
            pair.text,
            scale,
            all_image_features=pair.all_image,
            all_text_features=pair.all_text,
            label_offset=pair.label_offset,
        )
        return {"loss": loss, "logit_scale": scale.detach(), "accuracy": retrieval_accuracy(pair)}
