"""EfficientNet image tower (Tan & Le 2019), the image encoder family ALIGN uses (Jia et al. 2021).

B0's stage table (Table 1) scaled by width_mult (channels, rounded to multiples of 8) and depth_mult
(repeats, rounded up); MBConv blocks with squeeze-and-excitation (ratio 0.25 of the block input),
SiLU, BatchNorm (TF's eps 1e-3; momentum ``bn_momentum``, TF's 0.01 by default), stochastic depth rising linearly to drop_path_rate,
global average pooling, dropout, and a linear projection to the embedding size. With width 1.2 and
depth 1.4 (B3) the backbone plus a 1000-way head has torchvision's 12,233,232 parameters.

Grad checkpointing recomputes each MBConv block in backward; in training mode BatchNorm then
updates its running statistics twice per step (the gradients are unchanged, the running averages
move slightly faster). Same trade-off as timm's checkpointed EfficientNets.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

# (expand_ratio, kernel, stride, in_channels, out_channels, repeats) for EfficientNet-B0.
B0_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def round_channels(channels: int, width_mult: float, divisor: int = 8) -> int:
    """Scale and round to a multiple of `divisor`, never dropping more than 10% (the reference rule)."""
    scaled = channels * width_mult
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth_mult: float) -> int:
    return math.ceil(depth_mult * repeats)


def _conv_bn_act(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
    ]
    if act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = torch.sigmoid(self.expand(nn.functional.silu(self.reduce(scale))))
        return x * scale


class MBConv(nn.Module):
    """Inverted residual: expand 1x1 -> depthwise kxk -> squeeze-excite -> project 1x1 (+ skip)."""

    def __init__(
        self, cin: int, cout: int, expand_ratio: int, kernel: int, stride: int, drop_path: float
    ) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.expand = _conv_bn_act(cin, hidden, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = _conv_bn_act(hidden, hidden, kernel, stride, groups=hidden)
        self.se = SqueezeExcite(hidden, max(1, int(cin * 0.25)))
        self.project = _conv_bn_act(hidden, cout, 1, act=False)
        self.use_residual = stride == 1 and cin == cout
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if not self.use_residual:
            return out
        if self.training and self.drop_path > 0:
            # Stochastic depth: drop the whole residual branch per sample, rescale the survivors.
            keep = 1.0 - self.drop_path
            mask = torch.empty(out.shape[0], 1, 1, 1, device=out.device, dtype=out.dtype).bernoulli_(keep)
            out = out * mask / keep
        return x + out


class EfficientNet(nn.Module):
    """images [B, 3, H, W] -> pooled features [B, output_dim] (or the head width when output_dim is None)."""

    def __init__(
        self,
        width_mult: float,
        depth_mult: float,
        dropout: float,
        drop_path_rate: float,
        output_dim: int | None,
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        self.stem = _conv_bn_act(3, round_channels(STEM_CHANNELS, width_mult), 3, stride=2)
        specs = []
        for expand_ratio, kernel, stride, cin, cout, repeats in B0_STAGES:
            cin, cout = round_channels(cin, width_mult), round_channels(cout, width_mult)
            for index in range(round_repeats(repeats, depth_mult)):
                specs.append(
                    (cin if index == 0 else cout, cout, expand_ratio, kernel, stride if index == 0 else 1)
                )
        self.blocks = nn.ModuleList(
            MBConv(cin, cout, expand, kernel, stride, drop_path_rate * i / len(specs))
            for i, (cin, cout, expand, kernel, stride) in enumerate(specs)
        )
        head_channels = round_channels(HEAD_CHANNELS, width_mult)
        self.head = _conv_bn_act(specs[-1][1], head_channels, 1)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(head_channels, output_dim) if output_dim else None
        self.head_channels = head_channels
        self.feature_dim = output_dim or head_channels
        self.grad_checkpointing = False
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = bn_momentum
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=module.in_features**-0.5)
                nn.init.zeros_(module.bias)

    def set_grad_checkpointing(self, enabled: bool) -> None:
        self.grad_checkpointing = enabled

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(images)
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        pooled = self.dropout(self.head(x).mean((2, 3)))
        return self.proj(pooled) if self.proj is not None else pooled
