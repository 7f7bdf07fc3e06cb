"""A real 2-process gloo run of the pairwise objectives against the 1-process loss on the whole batch.

One `torch.multiprocessing.spawn` serves every case (one test, with a subtest per objective and check),
including accumulation with full-batch negatives (trainer/accumulate.py) across the two ranks. Each rank takes its half of a fixed batch of
features, computes the loss and backward, and saves what it got; the test compares with the loss and
gradients of the concatenated batch in this (non-distributed) process.

Gradient convention asserted here (documented in trainer/objectives/gather.py):
- gather_with_grad=True (full or local loss): a rank's feature gradient = WORLD_SIZE x the
  single-process gradient of its slice, because all_gather's backward sums over ranks. DDP then
  AVERAGES over ranks, so the model's gradient equals the single-process gradient; the DDP cases check
  exactly that on a small model whose parameters include the objective's scale/temperature/bias.
- gather_with_grad=False (full loss): a rank's feature gradient = 1 x its single-process slice.
- Loss: the full form returns the global loss on every rank; the local form returns the rank's share,
  and the mean over ranks equals the global loss. The objective's own parameter gradients follow the
  loss: equal on every rank (full) or averaging to the single-process one (local).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.testing import assert_close

from trainer.accumulate import full_batch_backward
from trainer.distributed import average_gradients
from trainer.objectives import ObjectiveConfig, build_objective

WORLD_SIZE = 2
BATCH, DIM, RAW = 8, 6, 4  # global batch, feature size, raw input size of the DDP toy model
OBJECTIVES = ("clip", "align", "siglip")
# (local_loss, gather_with_grad)
MODES = ((False, True), (True, True), (False, False))


def _fixed_features() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(11)
    image = F.normalize(torch.randn(BATCH, DIM, generator=generator, dtype=torch.float64), dim=1)
    text = F.normalize(torch.randn(BATCH, DIM, generator=generator, dtype=torch.float64), dim=1)
    return image, text


def _fixed_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(12)
    return (
        torch.randn(BATCH, RAW, generator=generator, dtype=torch.float64),
        torch.randn(BATCH, RAW, generator=generator, dtype=torch.float64),
    )


def _objective(name: str, local_loss: bool, gather_with_grad: bool) -> nn.Module:
    objective = build_objective(
        ObjectiveConfig(name=name, local_loss=local_loss, gather_with_grad=gather_with_grad)
    )
    objective = objective.double()
    with torch.no_grad():  # move the parameters off their initial values so every term matters
        for parameter in objective.parameters():
            parameter.mul_(0.8)
    return objective


class ToyTwoTower(nn.Module):
    """Two linear towers and the objective in one module, so DDP averages the objective's parameters too."""

    def __init__(self, objective: nn.Module) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(13)
        self.image = nn.Linear(RAW, DIM).double()
        self.text = nn.Linear(RAW, DIM).double()
        with torch.no_grad():
            for parameter in [*self.image.parameters(), *self.text.parameters()]:
                parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
        self.objective = objective

    def features(self, batch: dict) -> dict[str, torch.Tensor]:
        return {
            "image_features": F.normalize(self.image(batch["image"]), dim=1),
            "text_features": F.normalize(self.text(batch["text"]), dim=1),
        }

    def forward(self, raw_image: torch.Tensor, raw_text: torch.Tensor) -> torch.Tensor:
        return self.objective(self.features({"image": raw_image, "text": raw_text}), {})["loss"]


def _feature_case(name: str, local_loss: bool, gather_with_grad: bool, rows: slice) -> dict:
    image, text = _fixed_features()
    image, text = image[rows].clone().requires_grad_(), text[rows].clone().requires_grad_()
    objective = _objective(name, local_loss, gather_with_grad)
    loss = objective({"image_features": image, "text_features": text}, {})["loss"]
    loss.backward()
    return {
        "loss": loss.detach(),
        "image_grad": image.grad,
        "text_grad": text.grad,
        "param_grads": {key: p.grad.clone() for key, p in objective.named_parameters()},
    }


def _ddp_case(name: str, local_loss: bool, rows: slice, distributed: bool) -> dict[str, torch.Tensor]:
    model: nn.Module = ToyTwoTower(_objective(name, local_loss, True))
    if distributed:
        model = DistributedDataParallel(model)
    raw_image, raw_text = _fixed_inputs()
    model(raw_image[rows], raw_text[rows]).backward()
    module = model.module if distributed else model
    return {key: p.grad.clone() for key, p in module.named_parameters()}


def _accumulation_case(name: str, rows: slice, micro: int) -> dict[str, torch.Tensor]:
    """This rank's rows in micro-batches of ``micro``, full-batch negatives, gradients averaged."""
    model = ToyTwoTower(_objective(name, False, True))
    raw_image, raw_text = _fixed_inputs()
    image, text = raw_image[rows], raw_text[rows]
    batches = [
        {"image": image[i : i + micro], "text": text[i : i + micro]} for i in range(0, len(image), micro)
    ]
    full_batch_backward(
        model.features, model.objective, model, batches, device=torch.device("cpu"), autocast=nullcontext
    )
    average_gradients(list(model.parameters()))
    return {key: p.grad.clone() for key, p in model.named_parameters()}


def _worker(rank: int, store_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank, world_size=WORLD_SIZE)
    rows = slice(rank * BATCH // WORLD_SIZE, (rank + 1) * BATCH // WORLD_SIZE)
    results = {}
    for name in OBJECTIVES:
        for local_loss, gather_with_grad in MODES:
            results[("features", name, local_loss, gather_with_grad)] = _feature_case(
                name, local_loss, gather_with_grad, rows
            )
        for local_loss in (False, True):
            results[("ddp", name, local_loss)] = _ddp_case(name, local_loss, rows, distributed=True)
        results[("accumulation", name)] = _accumulation_case(name, rows, micro=2)
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def _spawn_two_ranks(work: Path) -> list[dict]:
    mp.spawn(_worker, args=(str(work / "store"), str(work)), nprocs=WORLD_SIZE, join=True)
    return [torch.load(work / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]


def _rank_rows(rank: int) -> slice:
    return slice(rank * BATCH // WORLD_SIZE, (rank + 1) * BATCH // WORLD_SIZE)


def _check_features(name: str, rank_results: list[dict]) -> None:
    reference = _feature_case(name, False, True, slice(0, BATCH))
    for local_loss, gather_with_grad in MODES:
        per_rank = [results[("features", name, local_loss, gather_with_grad)] for results in rank_results]
        case = f"{name} local_loss={local_loss} gather_with_grad={gather_with_grad}"
        if local_loss:
            losses = torch.stack([r["loss"] for r in per_rank])
            assert_close(losses.mean(), reference["loss"], msg=f"{case}: mean of local losses")
            assert not torch.allclose(losses[0], losses[1]), f"{case}: local losses should differ per rank"
            for key, grad in reference["param_grads"].items():
                mean = torch.stack([r["param_grads"][key] for r in per_rank]).mean()
                assert_close(mean, grad, msg=f"{case}: mean {key} gradient")
        else:
            for rank, got in enumerate(per_rank):
                assert_close(got["loss"], reference["loss"], msg=f"{case}: rank {rank} loss")
                for key, grad in reference["param_grads"].items():
                    assert_close(got["param_grads"][key], grad, msg=f"{case}: rank {rank} {key} gradient")
        factor = WORLD_SIZE if gather_with_grad else 1
        for rank, got in enumerate(per_rank):
            rows = _rank_rows(rank)
            for key in ("image_grad", "text_grad"):
                assert_close(
                    got[key],
                    factor * reference[key][rows],
                    msg=f"{case}: rank {rank} {key} = {factor} x slice",
                )


def _check_ddp(name: str, rank_results: list[dict]) -> None:
    reference = _ddp_case(name, False, slice(0, BATCH), distributed=False)
    assert {key for key in reference if key.startswith("objective.")}, "objective parameters must be trained"
    for local_loss in (False, True):
        for rank, results in enumerate(rank_results):
            got = results[("ddp", name, local_loss)]
            for key, grad in reference.items():
                assert_close(got[key], grad, msg=f"{name} local_loss={local_loss} rank {rank}: {key}")


def _check_accumulation(name: str, rank_results: list[dict]) -> None:
    """2 ranks x 2 micro-batches of 2, full-batch negatives: the gradient of the one global batch of 8."""
    reference = _ddp_case(name, False, slice(0, BATCH), distributed=False)
    for rank, results in enumerate(rank_results):
        got = results[("accumulation", name)]
        for key, grad in reference.items():
            assert (got[key] - grad).abs().max().item() <= 1e-6, f"{name} rank {rank}: {key}"
    assert any(key.startswith("objective.") for key in reference)


def test_two_gloo_ranks_match_one_process(tmp_path: Path, subtests: pytest.Subtests):
    """One spawn for every case (so pytest-xdist cannot split it into several spawns)."""
    rank_results = _spawn_two_ranks(tmp_path)
    for name in OBJECTIVES:
        with subtests.test(msg="loss and feature gradients", objective=name):
            _check_features(name, rank_results)
        with subtests.test(msg="DDP model gradients", objective=name):
            _check_ddp(name, rank_results)
        with subtests.test(msg="accumulation with full-batch negatives", objective=name):
            _check_accumulation(name, rank_results)
