"""Cross-rank feature gathering for the pairwise objectives (CLIP, ALIGN, SigLIP).

Gradient convention (the one the distributed tests check): with `with_grad=True` the gather is
`torch.distributed.nn.functional.all_gather`, whose backward SUMS the gradients every rank computes
for a slice. Each rank's loss is the global loss (full form) or its local rows' share (local form,
whose mean over ranks is the global loss), so a rank's feature gradient is world_size x the
single-process gradient of its slice, and DDP's gradient AVERAGING over ranks then yields exactly the
single-process model gradient. With `with_grad=False` the other ranks' features are constants and the
local tensor is put back in its slot: a rank's feature gradient is 1 x its single-process slice (full
form), so after DDP's averaging the model gradient is 1/world_size of the single-process one
(open_clip's behaviour; it only rescales the learning rate).

All ranks must hold the same per-rank batch size (the loader drops ragged batches).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn


def rank_and_world_size() -> tuple[int, int]:
    """(rank, world_size); (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather_features(features: torch.Tensor, with_grad: bool) -> torch.Tensor:
    """Concatenate every rank's [B, D] features in rank order -> [world_size * B, D]."""
    rank, world_size = rank_and_world_size()
    if world_size == 1:
        return features
    if with_grad:
        return torch.cat(dist_fn.all_gather(features), dim=0)
    gathered = [torch.empty_like(features) for _ in range(world_size)]
    dist.all_gather(gathered, features.detach().contiguous())
    gathered[rank] = features  # the only slice that carries a gradient
    return torch.cat(gathered, dim=0)


@dataclass
class GatheredPair:
    """Row features this rank computes the loss for, column features of the global batch, row offset."""

    image: torch.Tensor
    text: torch.Tensor
    all_image: torch.Tensor | None
    all_text: torch.Tensor | None
    label_offset: int


def gather_pair(
    image: torch.Tensor,
    text: torch.Tensor,
    *,
    local_loss: bool,
    with_grad: bool,
    need_all_images: bool = True,
) -> GatheredPair:
    """Arrange rows/columns for the loss: local rows vs all columns, or the full global matrix.

    Single process: rows are the batch, columns None (the functional losses then use the rows).
    need_all_images=False skips gathering images for the local form (SigLIP needs text columns only).
    """
    rank, world_size = rank_and_world_size()
    if world_size == 1:
        return GatheredPair(image, text, None, None, 0)
    all_text = all_gather_features(text, with_grad)
    if local_loss:
        all_image = all_gather_features(image, with_grad) if need_all_images else None
        return GatheredPair(image, text, all_image, all_text, rank * image.shape[0])
    all_image = all_gather_features(image, with_grad)
    return GatheredPair(all_image, all_text, None, None, 0)
