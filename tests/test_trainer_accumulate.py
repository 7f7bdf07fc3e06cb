"""Accumulation with full-batch negatives (trainer/accumulate.py): the gradient of K accumulated
micro-batches equals the gradient of one batch K times larger, for CLIP, SigLIP and ALIGN; dropout
and BatchNorm are replayed exactly; and the training loop uses it. The 2-rank gloo case is in
tests/test_objectives_distributed.py (one spawn for every distributed check)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.trainer_fixtures import make_dataset, torch_threads
from trainer.accumulate import concat_batches, full_batch_backward
from trainer.checkpoint import load_checkpoint
from trainer.config import load_train_config
from trainer.loop import TrainModule, train
from trainer.models import build_model, load_model_config
from trainer.objectives import ObjectiveConfig, build_objective

PAIRWISE = ("clip", "siglip", "align")
VIT = {"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "heads": 2}
TEXT = {"width": 32, "layers": 1, "heads": 2, "context_length": 12, "vocab_size": 50}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _module(objective: str, preset: str = "tiny-clip", **vision) -> TrainModule:
    torch.manual_seed(0)
    config = load_model_config(preset, vision=vision or VIT, text=TEXT, embed_dim=16)
    module = TrainModule(build_model(config), build_objective(ObjectiveConfig(objective)))
    with torch.no_grad():  # off the initial values, so the objective's parameters matter
        for parameter in module.objective.parameters():
            parameter.mul_(0.9)
    return module.double()


def _batches(count: int, rows: int, size: int = 32) -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(count):
        tokens = torch.randint(4, 50, (rows, 12), generator=generator)
        tokens[:, 0], tokens[:, 8], tokens[:, 9:] = 2, 3, 0  # [CLS] … [SEP] then [PAD]
        image = torch.randn(rows, 3, size, size, generator=generator, dtype=torch.float64)
        batches.append({"image": image, "tokens": tokens, "key": [f"k{i}" for i in range(rows)]})
    return batches


def _gradients(module: nn.Module) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}
    module.zero_grad(set_to_none=True)
    return grads


def _cached(module: TrainModule, batches: list[dict]) -> dict[str, torch.Tensor]:
    return full_batch_backward(
        module.features,
        module.objective,
        module.model,
        batches,
        device=torch.device("cpu"),
        autocast=contextlib.nullcontext,
    )


@pytest.mark.parametrize("objective", PAIRWISE)
def test_accumulated_gradients_equal_one_large_batch(objective: str) -> None:
    module = _module(objective)
    micro = _batches(4, 2)
    module(concat_batches(micro))["loss"].backward()
    large = _gradients(module)
    outputs = _cached(module, micro)
    accumulated = _gradients(module)
    assert accumulated.keys() == large.keys()
    assert any(name.startswith("objective.") for name in large)  # temperature / scale / bias too
    worst = max((accumulated[name] - large[name]).abs().max().item() for name in large)
    assert worst <= 1e-6, f"{objective}: max |grad difference| {worst}"
    assert torch.allclose(outputs["loss"], module(concat_batches(micro))["loss"].detach())
    # What accumulation did before: each micro-batch its own similarity matrix. It must differ.
    module.zero_grad(set_to_none=True)
    for batch in micro:
        (module(batch)["loss"] / len(micro)).backward()
    per_micro = _gradients(module)
    assert max((per_micro[name] - large[name]).abs().max().item() for name in large) > 1e-3


def test_dropout_and_batchnorm_are_replayed_exactly() -> None:
    """EfficientNet (dropout, stochastic depth, BatchNorm): the cached path equals backpropagating the
    loss through all micro-batch forwards at once, with the same random draws, and BatchNorm's running
    statistics move once per micro-batch, not twice."""
    torch.manual_seed(0)
    config = load_model_config("tiny-align", vision={"image_size": 32}, text=TEXT, embed_dim=16)
    reference = TrainModule(build_model(config), build_objective(ObjectiveConfig("align"))).double().train()
    cached = TrainModule(build_model(config), build_objective(ObjectiveConfig("align"))).double().train()
    cached.load_state_dict(reference.state_dict())
    micro = _batches(3, 4)
    torch.manual_seed(7)
    features = [reference.features(batch) for batch in micro]
    joined = {name: torch.cat([f[name] for f in features]) for name in features[0]}
    reference.objective(joined, concat_batches(micro))["loss"].backward()
    torch.manual_seed(7)
    _cached(cached, micro)
    want, got = _gradients(reference), _gradients(cached)
    assert max((got[name] - want[name]).abs().max().item() for name in want) <= 1e-10
    for (name, a), (_, b) in zip(reference.named_buffers(), cached.named_buffers()):
        assert torch.equal(a, b), f"{name}: BatchNorm statistics differ"


# ---------------------------------------------------------------- the training loop
@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("accum") / "ds", 96, image_size=40)


def _weights(dataset: Path, out: Path, objective: str, *options: str) -> dict:
    cfg = load_train_config(
        None,
        [f"data.paths=[{dataset}]", "model.preset=tiny-clip", f"objective.name={objective}", f"out_dir={out}",
         "run.steps=3", "data.workers=0", "optim.lr=2e-3", "optim.warmup_steps=1", "logging.progress=false",
         "model.overrides={vision: {image_size: 32, patch_size: 16, width: 32, layers: 1, heads: 2},"
         " text: {width: 32, layers: 1, heads: 2, context_length: 12}, embed_dim: 32}", *options],
    )  # fmt: skip
    return load_checkpoint(train(cfg).checkpoint)["model"]


@pytest.mark.parametrize("objective", PAIRWISE)
def test_the_loop_trains_accumulated_steps_like_one_large_batch(
    dataset: Path, tmp_path: Path, objective: str
) -> None:
    # The stream fills batches in order, so 2 x 8 accumulated are the same 16 samples as one batch of 16.
    large = _weights(dataset, tmp_path / "large", objective, "data.batch_size=16")
    accumulated = _weights(dataset, tmp_path / "accum", objective, "data.batch_size=8", "run.grad_accum=2")
    small = _weights(dataset, tmp_path / "small", objective, "data.batch_size=8")
    assert all(torch.allclose(large[k], accumulated[k], atol=1e-5) for k in large)
    assert not all(torch.allclose(large[k], small[k], atol=1e-5) for k in large)
