"""Pure loss functions behind the objective modules; no parameters, no collectives.

Every pairwise loss takes the "row" features it owns plus, optionally, the "column" features of the
whole global batch and the offset of its rows inside that batch. Without the optional arguments it
is the single-process N x N loss; with them it is the local-loss form (memory linear in the global
batch), whose mean over ranks equals the N x N loss when every rank holds the same batch size.
All features are expected L2-normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.objectives.config import ALIGN_REDUCTIONS


def _columns(rows: torch.Tensor, all_features: torch.Tensor | None) -> torch.Tensor:
    return rows if all_features is None else all_features


def _labels(rows: int, offset: int, device: torch.device) -> torch.Tensor:
    return torch.arange(rows, device=device) + offset


def clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    *,
    all_image_features: torch.Tensor | None = None,
    all_text_features: torch.Tensor | None = None,
    label_offset: int = 0,
) -> torch.Tensor:
    """CLIP's symmetric cross-entropy (Radford et al. 2021, Figure 3): mean of image->text and text->image.

    logit_scale is the multiplier itself (exp of the learnable log-scale), as in open_clip.
    """
    image_columns = _columns(image_features, all_image_features)
    text_columns = _columns(text_features, all_text_features)
    labels = _labels(image_features.shape[0], label_offset, image_features.device)
    logits_per_image = logit_scale * image_features @ text_columns.T
    logits_per_text = logit_scale * text_features @ image_columns.T
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


def align_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    temperature: torch.Tensor,
    label_smoothing: float,
    *,
    reduction: str = "sum",
    all_image_features: torch.Tensor | None = None,
    all_text_features: torch.Tensor | None = None,
    label_offset: int = 0,
) -> torch.Tensor:
    """ALIGN's normalised softmax loss (Jia et al. 2021): L_i2t + L_t2i, logits = similarity / temperature.

    ``reduction="sum"`` adds the two directions as the paper writes it; ``"mean"`` averages them, as
    HF transformers' ``AlignModel`` does: half the loss and half every gradient, which is what a
    ported clipping threshold or learning rate assumes. Label smoothing puts 1 - eps on the pair and
    spreads eps uniformly over all N columns (torch's convention), N = global batch.
    """
    if reduction not in ALIGN_REDUCTIONS:
        raise ValueError(f"reduction must be one of {ALIGN_REDUCTIONS}, got {reduction!r}")
    image_columns = _columns(image_features, all_image_features)
    text_columns = _columns(text_features, all_text_features)
    labels = _labels(image_features.shape[0], label_offset, image_features.device)
    logits_i2t = image_features @ text_columns.T / temperature
    logits_t2i = text_features @ image_columns.T / temperature
    total = F.cross_entropy(logits_i2t, labels, label_smoothing=label_smoothing) + F.cross_entropy(
        logits_t2i, labels, label_smoothing=label_smoothing
    )
    return total if reduction == "sum" else total / 2


def siglip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    *,
    all_text_features: torch.Tensor | None = None,
    label_offset: int = 0,
) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss (Zhai et al. 2023, Algorithm 1): -Σ log σ(z_ij (t x_i·y_j + b)) / rows.

    z_ij = +1 for the matching pair, -1 otherwise; scale = t is the multiplier (exp of t'). Rows are the
    image features held here; every pair (i, j) is a row of exactly one rank, so only the text columns
    need gathering for the local form.
    """
    text_columns = _columns(text_features, all_text_features)
    rows = image_features.shape[0]
    logits = scale * image_features @ text_columns.T + bias
    signs = -torch.ones_like(logits)
    labels = _labels(rows, label_offset, logits.device)
    signs[torch.arange(rows, device=logits.device), labels] = 1.0
    return -F.logsigmoid(signs * logits).sum() / rows


def catlip_loss(
    logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """CatLIP's multi-label binary cross-entropy (Mehta et al. 2024).

    Per sample the BCE-with-logits terms are SUMMED over the vocabulary, then the batch MEAN is taken,
    so the loss scale grows with the vocabulary size (~0.69 x num_classes at initialisation).
    targets: float multi-hot [B, num_classes]; pos_weight (optional) weighs the positive terms.
    """
    per_label = F.binary_cross_entropy_with_logits(logits, targets, reduction="none", pos_weight=pos_weight)
    return per_label.sum(dim=1).mean()
