"""The two model shapes the objectives train: a two-tower image-text model and CatLIP's image classifier.

Both return L2-normalised "image_features"; the two-tower model adds "text_features", the classifier
adds "logits" from `model.classifier`, a plain nn.Linear(embed_dim, num_classes) whose rows the
evaluation code copies or averages for CatLIP's Transfer Init.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.config import ModelConfig


class TwoTowerModel(nn.Module):
    """CLIP / ALIGN / SigLIP: an image tower and a text tower mapping into one embedding space."""

    def __init__(self, visual: nn.Module, text: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.visual = visual
        self.text = text
        self.config = config

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, H, W] -> L2-normalised [B, embed_dim]."""
        return F.normalize(self.visual(images), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, L] (LongTensor, [PAD] = 0) -> L2-normalised [B, embed_dim]."""
        return F.normalize(self.text(tokens), dim=-1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Returns {"image_features", "text_features"}; "text_features" is left out when tokens is None."""
        outputs = {"image_features": self.encode_image(images)}
        if tokens is not None:
            outputs["text_features"] = self.encode_text(tokens)
        return outputs

    def set_grad_checkpointing(self, enabled: bool) -> None:
        """Recompute transformer / MBConv blocks in backward instead of storing their activations."""
        self.visual.set_grad_checkpointing(enabled)
        self.text.set_grad_checkpointing(enabled)


class ImageClassifierModel(nn.Module):
    """CatLIP: image tower + linear classifier over the synset vocabulary; no text tower."""

    def __init__(self, visual: nn.Module, embed_dim: int, num_classes: int, config: ModelConfig) -> None:
        super().__init__()
        self.visual = visual
        # Only when the tower's width differs from embed_dim; the paper's ViT feeds its classifier directly.
        self.projection = (
            nn.Linear(visual.feature_dim, embed_dim) if visual.feature_dim != embed_dim else None
        )
        self.classifier = nn.Linear(embed_dim, num_classes)
        self.config = config
        nn.init.trunc_normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def _pooled(self, images: torch.Tensor) -> torch.Tensor:
        pooled = self.visual(images)
        return self.projection(pooled) if self.projection is not None else pooled

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, H, W] -> L2-normalised [B, embed_dim] (the classifier's input, normalised)."""
        return F.normalize(self._pooled(images), dim=-1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Returns {"logits": [B, num_classes], "image_features": normalised [B, embed_dim]}; tokens are ignored."""
        pooled = self._pooled(images)
        return {"logits": self.classifier(pooled), "image_features": F.normalize(pooled, dim=-1)}

    def set_grad_checkpointing(self, enabled: bool) -> None:
        """Recompute transformer / MBConv blocks in backward instead of storing their activations."""
        self.visual.set_grad_checkpointing(enabled)
