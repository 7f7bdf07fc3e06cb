"""Vision Transformer image tower in CLIP's layout (Dosovitskiy et al. 2021; Radford et al. 2021).

Patchify with a strided convolution (no bias), prepend a class token, add learned position
embeddings, LayerNorm (CLIP's `ln_pre`), pre-LN transformer, LayerNorm on the class token, then an
optional bias-free projection. ViT-B/16 with a 512-d projection has exactly OpenAI CLIP's 86,192,640
image-tower parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.models.layers import Transformer, init_linear_layers


class VisionTransformer(nn.Module):
    """images [B, 3, H, W] -> pooled class-token features [B, output_dim or width]."""

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        width: int,
        layers: int,
        heads: int,
        mlp_ratio: float,
        output_dim: int | None,
        quick_gelu: bool = False,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size = image_size
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        num_positions = (image_size // patch_size) ** 2 + 1
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(num_positions, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(
            width, layers, heads, mlp_ratio, norm_first=True, quick_gelu=quick_gelu
        )
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim)) if output_dim else None
        self.feature_dim = output_dim or width
        init_linear_layers(self.transformer)

    def set_grad_checkpointing(self, enabled: bool) -> None:
        self.transformer.grad_checkpointing = enabled

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"expected {self.image_size}x{self.image_size} images, got {tuple(images.shape[-2:])}"
            )
        x = self.conv1(images).flatten(2).transpose(1, 2)  # [B, patches, width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        pooled = self.ln_post(x[:, 0])
        return pooled @ self.proj if self.proj is not None else pooled
