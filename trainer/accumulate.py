"""Gradient accumulation that keeps the whole accumulated batch as negatives (GradCache; Gao et al.
2021, the design behind OpenCLIP's ``--accum-freq``).

A pairwise loss (CLIP, ALIGN, SigLIP) couples every sample with every other one, so accumulating the
gradients of K micro-batch losses trains with K small similarity matrices instead of one large one.
``full_batch_backward`` gives the gradient of the loss over all K micro-batches at the memory cost of
one micro-batch's activations:

1. Forward every micro-batch without a graph and keep only its features (``B x D`` each). The RNG
   state before each forward is kept, and BatchNorm running statistics are put back afterwards, so
   step 3 sees the same dropout / stochastic-depth draws and the statistics move once per micro-batch.
2. Compute the loss over the concatenated features (gathered across ranks as usual) and backpropagate
   it to the features and the objective's own parameters (temperature, scale, bias).
3. Forward each micro-batch again with a graph (same RNG state) and backpropagate the cached feature
   gradients through it: ``sum(features * cached_grad)`` has exactly the tower gradient of step 2's
   loss, so the accumulated parameter gradients equal those of one large batch.

The caller averages gradients across ranks afterwards (DDP's reducer is not used on this path).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn


def concat_batches(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Micro-batches → one batch: tensors concatenated on dim 0, lists joined."""
    joined: dict[str, Any] = {}
    for name, first in batches[0].items():
        if torch.is_tensor(first):
            joined[name] = torch.cat([batch[name] for batch in batches])
        elif isinstance(first, list):
            joined[name] = [item for batch in batches for item in batch[name]]
    return joined


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _batchnorm_buffers(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [
        (buffer, buffer.detach().clone())
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        for buffer in module.buffers()
    ]


def full_batch_backward(
    features: Callable[[dict[str, Any]], dict[str, torch.Tensor]],
    loss: Callable[[dict[str, torch.Tensor], dict[str, Any]], dict[str, torch.Tensor]],
    model: nn.Module,
    micro_batches: list[dict[str, Any]],
    *,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager],
    scale: Callable[[torch.Tensor], torch.Tensor] = lambda loss: loss,
) -> dict[str, torch.Tensor]:
    """Backpropagates the loss of all ``micro_batches`` together; returns the loss's outputs.

    ``features(batch)`` is the model's forward dict, ``loss(features, batch)`` the objective;
    ``scale`` is the AMP loss scaler's ``scale`` (identity without fp16).
    """
    states, cached = [], []
    saved = _batchnorm_buffers(model)
    with torch.no_grad():
        for batch in micro_batches:
            states.append(_rng_state(device))
            with autocast():
                cached.append(features(batch))
    with torch.no_grad():
        for buffer, value in saved:
            buffer.copy_(value)
    leaves = {
        name: torch.cat([part[name] for part in cached]).detach().requires_grad_()
        for name in cached[0]
        if cached[0][name].is_floating_point()
    }
    with autocast():
        outputs = loss(leaves, concat_batches(micro_batches))
    scale(outputs["loss"]).backward()
    used = {name: leaf.grad for name, leaf in leaves.items() if leaf.grad is not None}
    offset = 0
    for batch, state in zip(micro_batches, states):
        _set_rng_state(state, device)
        with autocast():
            recomputed = features(batch)
        rows = next(iter(recomputed.values())).shape[0]
        surrogate = sum(
            (recomputed[name] * grad[offset : offset + rows].to(recomputed[name].dtype)).sum()
            for name, grad in used.items()
        )
        surrogate.backward()
        offset += rows
    return {name: value.detach() for name, value in outputs.items()}
