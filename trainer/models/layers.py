"""Transformer building blocks shared by the ViT and both text towers.

Attention runs through `F.scaled_dot_product_attention` (fused kernels on GPU, exact math on CPU).
Pre-LayerNorm blocks are the CLIP/ViT form; post-LayerNorm blocks are BERT's. Parameter shapes
match `nn.MultiheadAttention` + a two-layer MLP, so parameter counts match the published models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.in_proj = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        """x: [B, L, W]; attn_mask: bool, True = may attend, broadcastable to [B, heads, L, L]."""
        batch, length, width = x.shape
        qkv = self.in_proj(x).view(batch, length, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """OpenAI CLIP's GELU approximation, x * sigmoid(1.702 x)."""
    return x * torch.sigmoid(1.702 * x)


class MLP(nn.Module):
    """Two linear layers with GELU (open_clip's default) or OpenAI CLIP's QuickGELU approximation."""

    def __init__(self, width: int, mlp_ratio: float, quick: bool = False) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.activation = quick_gelu if quick else F.gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


class TransformerBlock(nn.Module):
    """One block; `norm_first=True` is the pre-LN (CLIP/ViT) form, False the post-LN (BERT) form."""

    def __init__(
        self, width: int, heads: int, mlp_ratio: float, norm_first: bool, quick_gelu: bool = False
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.ln_1 = nn.LayerNorm(width, eps=1e-5 if norm_first else 1e-12)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=1e-5 if norm_first else 1e-12)
        self.mlp = MLP(width, mlp_ratio, quick_gelu)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        if self.norm_first:
            x = x + self.attn(self.ln_1(x), attn_mask, is_causal)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, attn_mask, is_causal))
        return self.ln_2(x + self.mlp(x))


class Transformer(nn.Module):
    """A stack of blocks; with grad checkpointing on, each block's activations are recomputed in backward."""

    def __init__(
        self,
        width: int,
        layers: int,
        heads: int,
        mlp_ratio: float,
        norm_first: bool = True,
        quick_gelu: bool = False,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(width, heads, mlp_ratio, norm_first, quick_gelu) for _ in range(layers)
        )
        self.grad_checkpointing = False

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, attn_mask, is_causal, use_reentrant=False)
            else:
                x = block(x, attn_mask, is_causal)
        return x


def init_linear_layers(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal weights and zero biases for every nn.Linear (ViT/BERT initialisation)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.trunc_normal_(layer.weight, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
