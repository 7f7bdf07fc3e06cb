"""CatLIP objective: multi-label classification of WordNet synsets (Mehta et al. 2024).

No text tower, no pairwise similarity and no cross-rank gather: each rank's loss depends on its own
samples only, so plain DDP gradient averaging is all the distribution it needs.
"""

from __future__ import annotations

import torch

from trainer.objectives.base import Objective
from trainer.objectives.functional import catlip_loss


class CatlipObjective(Objective):
    """BCE over the synset vocabulary: outputs["logits"] [B, C] against batch["targets"] multi-hot [B, C]."""

    needs_text = False

    def __init__(self, pos_weight: float | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        logits = outputs["logits"]
        targets = batch["targets"].to(device=logits.device, dtype=logits.dtype)
        if targets.shape != logits.shape:
            raise ValueError(
                f"targets {tuple(targets.shape)} do not match logits {tuple(logits.shape)}: the model's "
                "num_classes must equal the number of kept synsets in the vocabulary"
            )
        pos_weight = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
        loss = catlip_loss(logits, targets, pos_weight)
        with torch.no_grad():
            # Top-1 hit: the highest-scoring synset is one of the sample's labels.
            top1_hit = targets.gather(1, logits.argmax(dim=1, keepdim=True)).squeeze(1) > 0.5
            metrics = {"accuracy": top1_hit.float().mean(), "positives": targets.sum(dim=1).mean()}
        return {"loss": loss, **metrics}
