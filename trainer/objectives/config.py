"""ObjectiveConfig: which loss to train with and its initial values, taken from the papers."""

from __future__ import annotations

import math
from dataclasses import dataclass

OBJECTIVE_NAMES = ("clip", "align", "catlip", "siglip")
ALIGN_REDUCTIONS = ("sum", "mean")  # the paper's L_i2t + L_t2i, or HF AlignModel's average


@dataclass
class ObjectiveConfig:
    """Loss choice, distributed options and paper initialisations.

    local_loss: each rank computes only its own rows against all gathered columns (memory linear in the
        global batch); needs gather_with_grad=True, because a no-grad gather would drop the gradient
        other ranks' rows send to this rank's features.
    gather_with_grad: gather features with torch.distributed.nn's differentiable all_gather.
    label_smoothing: ALIGN only (Jia et al. 2021 use 0.1).
    align_reduction: ALIGN only: "sum" adds the image->text and text->image losses (the paper's
        L_i2t + L_t2i); "mean" averages them (HF transformers' AlignModel), half the loss and gradients.
    logit_scale_init / logit_scale_max: CLIP, log(1/0.07) clamped at log(100) (Radford et al. 2021).
    temperature_init / temperature_min: ALIGN's learnable softmax temperature, initialised to 1.0; the
        floor 0.01 (logits at most 100x the cosine) mirrors CLIP's clamp.
    siglip_scale_init / siglip_bias_init: SigLIP, t' = log(10), b = -10 (Zhai et al. 2023).
    pos_weight: CatLIP, optional weight on positive labels; None = the paper's plain BCE.
    """

    name: str = "clip"
    local_loss: bool = False
    gather_with_grad: bool = True
    label_smoothing: float = 0.1
    align_reduction: str = "sum"
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = math.log(100)
    temperature_init: float = 1.0
    temperature_min: float = 0.01
    siglip_scale_init: float = math.log(10)
    siglip_bias_init: float = -10.0
    pos_weight: float | None = None

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVE_NAMES:
            raise ValueError(f"objective name must be one of {OBJECTIVE_NAMES}, got {self.name!r}")
        if self.local_loss and not self.gather_with_grad:
            raise ValueError(
                "local_loss=True needs gather_with_grad=True: with a no-grad gather the gradients that "
                "other ranks' rows send to this rank's features are lost"
            )
        if self.align_reduction not in ALIGN_REDUCTIONS:
            raise ValueError(
                f"align_reduction must be one of {ALIGN_REDUCTIONS}, got {self.align_reduction!r}"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 < self.temperature_min <= self.temperature_init:
            raise ValueError(
                f"need 0 < temperature_min <= temperature_init, got {self.temperature_min}, {self.temperature_init}"
            )
        if self.logit_scale_init > self.logit_scale_max:
            raise ValueError(
                f"logit_scale_init {self.logit_scale_init} exceeds logit_scale_max {self.logit_scale_max}"
            )
        if self.pos_weight is not None and self.pos_weight <= 0:
            raise ValueError(f"pos_weight must be positive or None, got {self.pos_weight}")
