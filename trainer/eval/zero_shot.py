"""CLIP-style zero-shot classification: prompt templates → one averaged text embedding per class."""

from __future__ import annotations

import torch
from torch import nn

from trainer.data.text import CaptionTokenizer

# The 7 templates OpenAI's CLIP notebook found best as an ensemble for ImageNet.
CLIP_TEMPLATES = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)
SIMPLE_TEMPLATES = ("a photo of a {}.",)
TEMPLATE_SETS = {"clip": CLIP_TEMPLATES, "simple": SIMPLE_TEMPLATES}


@torch.no_grad()
def text_classifier(
    model: nn.Module,
    tokenizer: CaptionTokenizer,
    labels: list[str],
    templates: tuple[str, ...],
    device: torch.device,
) -> torch.Tensor:
    """[C, D]: per class, the normalised mean of its normalised prompt embeddings."""
    rows = []
    for label in labels:
        tokens = tokenizer([template.format(label) for template in templates]).to(device)
        features = nn.functional.normalize(model.encode_text(tokens).float(), dim=-1)
        rows.append(nn.functional.normalize(features.mean(dim=0), dim=-1))
    return torch.stack(rows)


def topk_accuracy(
    logits: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...] = (1, 5)
) -> dict[str, float]:
    """Fraction of rows whose target is among the k highest logits, for each k (capped at C)."""
    result = {}
    for k in ks:
        top = logits.topk(min(k, logits.shape[1]), dim=1).indices
        result[f"top{k}"] = (top == targets.unsqueeze(1)).any(dim=1).float().mean().item()
    return result
