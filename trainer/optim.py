"""AdamW with CLIP's parameter groups, warm-up + cosine schedule, EMA of weights, gradient clipping.

No weight decay on gains, biases and the objective's temperature/scale/bias: every parameter
with fewer than two dimensions (CLIP's recipe, as in OpenCLIP). The schedule is a ``LambdaLR``
over a small callable object, so its numbers travel in the scheduler's state_dict.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from trainer.config import OptimConfig


def param_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: matrices/kernels decay; 0-d and 1-d parameters (gains, biases, scales) do not."""
    decay, no_decay = [], []
    for parameter in module.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(module: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(module, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


class WarmupCosine:
    """LR multiplier: linear from 1/warmup to 1 over ``warmup`` steps, then cosine to ``min_ratio``."""

    def __init__(self, warmup: int, total: int, min_ratio: float = 0.0) -> None:
        self.warmup = warmup
        self.total = total
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = min(cfg.warmup_steps, max(0, total_steps - 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total_steps, cfg.min_lr_ratio))


def build_ema(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of ``model``'s parameters and buffers, or None."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def clip_gradients(parameters: list[nn.Parameter], max_norm: float | None) -> torch.Tensor | None:
    """Clips the global gradient norm in place; returns the norm before clipping (None: no clipping)."""
    if max_norm is None:
        return None
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
