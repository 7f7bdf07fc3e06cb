"""Training objectives: CLIP, ALIGN, SigLIP (two-tower, pairwise) and CatLIP (image-only, multi-label).

`build_objective(cfg: ObjectiveConfig) -> Objective` returns an nn.Module called as
`objective(outputs: dict, batch: dict) -> dict` with "loss" (scalar tensor) and float-able metric
tensors ("logit_scale", "temperature", "logit_bias", "accuracy", "positives" depending on the
objective). What the loop asks of an objective is on its class (`objective_class(name)`): `needs_text`
(False for CatLIP), `pairwise`, `flips_images`. Learnable temperature / scale / bias are
nn.Parameters of the objective (0-d), optimised together with the model.

Outputs used: "image_features" and "text_features" (L2-normalised, [B, D]) for the pairwise
objectives; "logits" [B, C] for CatLIP, with batch["targets"] multi-hot [B, C].

Distributed (torch.distributed initialised, world_size > 1): CLIP / ALIGN / SigLIP gather features
across ranks (with gradient by default) and, with local_loss=True, compute only the local rows
against all columns, labels offset by rank * B. The loss each rank returns is then its local share;
the mean over ranks is the global loss. Gradient convention: see trainer/objectives/gather.py. CatLIP
never gathers. The functional cores are in trainer/objectives/functional.py.
"""

from __future__ import annotations

from trainer.objectives.align import AlignObjective
from trainer.objectives.base import Objective, PairwiseObjective
from trainer.objectives.catlip import CatlipObjective
from trainer.objectives.clip import ClipObjective
from trainer.objectives.config import OBJECTIVE_NAMES, ObjectiveConfig
from trainer.objectives.siglip import SiglipObjective

__all__ = [
    "OBJECTIVES",
    "OBJECTIVE_NAMES",
    "AlignObjective",
    "CatlipObjective",
    "ClipObjective",
    "Objective",
    "ObjectiveConfig",
    "PairwiseObjective",
    "SiglipObjective",
    "build_objective",
    "objective_class",
]


OBJECTIVES: dict[str, type[Objective]] = {
    "clip": ClipObjective,
    "align": AlignObjective,
    "siglip": SiglipObjective,
    "catlip": CatlipObjective,
}


def objective_class(name: str) -> type[Objective]:
    """The objective called ``name``: what the loop asks of it (``needs_text``, ``pairwise``, …)."""
    return OBJECTIVES[name]


def build_objective(cfg: ObjectiveConfig) -> Objective:
    """The objective module named by cfg.name, initialised with cfg's (paper) values."""
    if cfg.name == "clip":
        return ClipObjective(cfg.logit_scale_init, cfg.logit_scale_max, cfg.local_loss, cfg.gather_with_grad)
    if cfg.name == "align":
        return AlignObjective(
            cfg.temperature_init,
            cfg.temperature_min,
            cfg.label_smoothing,
            cfg.local_loss,
            cfg.gather_with_grad,
            cfg.align_reduction,
        )
    if cfg.name == "siglip":
        return SiglipObjective(
            cfg.siglip_scale_init, cfg.siglip_bias_init, cfg.local_loss, cfg.gather_with_grad
        )
    return CatlipObjective(cfg.pos_weight)
