"""Parity of every loss and its gradient with plain reference computations written out here.

References use explicit per-row loops, a hand-written log-sum-exp / log-softmax / log-sigmoid and no
torch.nn.functional loss, in double precision. Also: paper initial values, config validation, the
local-loss algebra in one process, and a smoke run of benchmarks/bench_objectives.py.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from trainer.objectives import ObjectiveConfig, build_objective
from trainer.objectives.functional import align_loss, catlip_loss, clip_loss, siglip_loss

ROOT = Path(__file__).resolve().parents[1]
BATCH, DIM = 6, 5


def _features(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(BATCH, DIM, generator=generator, dtype=torch.float64)
    text = torch.randn(BATCH, DIM, generator=generator, dtype=torch.float64)
    image = image / image.norm(dim=1, keepdim=True)
    text = text / text.norm(dim=1, keepdim=True)
    return image.requires_grad_(), text.requires_grad_()


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return sum(a[k] * b[k] for k in range(a.shape[0]))


def _logsumexp(values: list[torch.Tensor]) -> torch.Tensor:
    peak = max(v.detach() for v in values)
    return peak + torch.log(sum(torch.exp(v - peak) for v in values))


def _log_sigmoid(value: torch.Tensor) -> torch.Tensor:
    return -torch.log1p(torch.exp(-value))


def _reference_clip(image: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    scale = torch.exp(log_scale)
    n = image.shape[0]
    image_to_text = [
        _logsumexp([scale * _dot(image[i], text[j]) for j in range(n)]) - scale * _dot(image[i], text[i])
        for i in range(n)
    ]
    text_to_image = [
        _logsumexp([scale * _dot(text[i], image[j]) for j in range(n)]) - scale * _dot(text[i], image[i])
        for i in range(n)
    ]
    return (sum(image_to_text) / n + sum(text_to_image) / n) / 2


def _smoothed_ce_rows(rows: torch.Tensor, columns: torch.Tensor, temperature: torch.Tensor, eps: float):
    n = rows.shape[0]
    total = 0.0
    for i in range(n):
        logits = [_dot(rows[i], columns[j]) / temperature for j in range(n)]
        lse = _logsumexp(logits)
        log_probs = [logit - lse for logit in logits]
        total = total - ((1 - eps) * log_probs[i] + eps / n * sum(log_probs))
    return total / n


def _reference_align(image, text, temperature, eps):
    return _smoothed_ce_rows(image, text, temperature, eps) + _smoothed_ce_rows(text, image, temperature, eps)


def _reference_siglip(image, text, log_scale, bias):
    n = image.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            sign = 1.0 if i == j else -1.0
            total = total - _log_sigmoid(sign * (torch.exp(log_scale) * _dot(image[i], text[j]) + bias))
    return total / n


def _reference_catlip(logits, targets, pos_weight=1.0):
    batch, classes = logits.shape
    total = 0.0
    for b in range(batch):
        for c in range(classes):
            y, x = targets[b, c], logits[b, c]
            total = total - (pos_weight * y * _log_sigmoid(x) + (1 - y) * _log_sigmoid(-x))
    return total / batch


def _grads(loss: torch.Tensor, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(loss, tensors)


def _objective(name: str, **kwargs) -> torch.nn.Module:
    return build_objective(ObjectiveConfig(name=name, **kwargs)).double()


def test_clip_loss_and_gradients_match_reference():
    image, text = _features()
    objective = _objective("clip")
    result = objective({"image_features": image, "text_features": text}, {})
    log_scale = objective.logit_scale
    expected = _reference_clip(image, text, log_scale)
    assert_close(result["loss"], expected)
    for got, want in zip(
        _grads(result["loss"], [image, text, log_scale]), _grads(expected, [image, text, log_scale])
    ):
        assert_close(got, want)
    assert_close(result["logit_scale"], torch.tensor(1 / 0.07, dtype=torch.float64))


def test_align_loss_with_label_smoothing_and_gradients_match_reference():
    image, text = _features(1)
    objective = _objective("align")
    with torch.no_grad():
        objective.temperature.fill_(0.3)  # away from 1.0 so a missing division would show
    result = objective({"image_features": image, "text_features": text}, {})
    expected = _reference_align(image, text, objective.temperature, 0.1)
    assert_close(result["loss"], expected)
    params = [image, text, objective.temperature]
    for got, want in zip(_grads(result["loss"], params), _grads(expected, params)):
        assert_close(got, want)
    unsmoothed = align_loss(image, text, objective.temperature, 0.0)
    assert not torch.allclose(unsmoothed, result["loss"]), "label smoothing had no effect"


def _reference_hf_align(image, text, temperature, eps):
    """HF transformers' AlignModel loss written out: logits_per_text = text @ image.T / temperature,
    caption loss = smoothed cross-entropy over its rows, image loss = the same over its transpose,
    loss = (caption loss + image loss) / 2.0 (transformers/models/align/modeling_align.py)."""
    n = image.shape[0]
    logits_per_text = [[_dot(text[i], image[j]) / temperature for j in range(n)] for i in range(n)]
    logits_per_image = [[logits_per_text[j][i] for j in range(n)] for i in range(n)]

    def smoothed_cross_entropy(rows):
        total = 0.0
        for i, logits in enumerate(rows):
            lse = _logsumexp(logits)
            total = total - ((1 - eps) * (logits[i] - lse) + eps / n * sum(logit - lse for logit in logits))
        return total / n

    return (smoothed_cross_entropy(logits_per_text) + smoothed_cross_entropy(logits_per_image)) / 2.0


def test_align_mean_reduction_equals_hf_align_model_and_sum_is_twice_it():
    image, text = _features(5)
    objective = _objective("align", align_reduction="mean")
    with torch.no_grad():
        objective.temperature.fill_(0.4)
    result = objective({"image_features": image, "text_features": text}, {})
    expected = _reference_hf_align(image, text, objective.temperature, 0.1)
    assert_close(result["loss"], expected)
    params = [image, text, objective.temperature]
    mean_grads = _grads(result["loss"], params)
    for got, want in zip(mean_grads, _grads(expected, params)):
        assert_close(got, want)
    summed = _objective("align")  # the default: the paper's sum
    assert summed.reduction == "sum"
    with torch.no_grad():
        summed.temperature.fill_(0.4)
    summed_loss = summed({"image_features": image, "text_features": text}, {})["loss"]
    assert_close(summed_loss, 2 * expected)
    for got, want in zip(_grads(summed_loss, [image, text, summed.temperature]), mean_grads):
        assert_close(got, 2 * want)
    with pytest.raises(ValueError, match="align_reduction"):
        ObjectiveConfig(name="align", align_reduction="average")


def test_siglip_loss_and_gradients_match_reference():
    image, text = _features(2)
    objective = _objective("siglip")
    result = objective({"image_features": image, "text_features": text}, {})
    expected = _reference_siglip(image, text, objective.logit_scale, objective.logit_bias)
    assert_close(result["loss"], expected)
    params = [image, text, objective.logit_scale, objective.logit_bias]
    for got, want in zip(_grads(result["loss"], params), _grads(expected, params)):
        assert_close(got, want)


@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_catlip_loss_is_batch_mean_of_vocabulary_sum_bce(pos_weight):
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    targets = (torch.rand(4, 7, generator=generator) < 0.3).double()
    objective = _objective("catlip", pos_weight=pos_weight)
    result = objective({"logits": logits}, {"targets": targets})
    expected = _reference_catlip(logits, targets, 1.0 if pos_weight is None else pos_weight)
    assert_close(result["loss"], expected)
    assert_close(_grads(result["loss"], [logits])[0], _grads(expected, [logits])[0])
    # Sum over the vocabulary: at zero logits every one of the C terms contributes log 2.
    zero = catlip_loss(torch.zeros(4, 7, dtype=torch.float64), targets)
    assert_close(zero, torch.tensor(7 * math.log(2), dtype=torch.float64))


def test_catlip_top1_accuracy_and_needs_text():
    objective = _objective("catlip")
    assert objective.needs_text is False
    assert all(_objective(name).needs_text for name in ("clip", "align", "siglip"))
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]], dtype=torch.float64)
    targets = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    result = objective({"logits": logits}, {"targets": targets})
    assert float(result["accuracy"]) == 0.5
    assert float(result["positives"]) == 1.5
    with pytest.raises(ValueError, match="num_classes"):
        objective({"logits": logits}, {"targets": targets[:, :2]})


def test_paper_initial_values_are_learnable_parameters():
    clip, align, siglip = _objective("clip"), _objective("align"), _objective("siglip")
    assert math.isclose(clip.logit_scale.item(), math.log(1 / 0.07), rel_tol=1e-6)
    assert align.temperature.item() == 1.0
    assert math.isclose(siglip.logit_scale.item(), math.log(10), rel_tol=1e-6)
    assert siglip.logit_bias.item() == -10.0
    assert {name for name, _ in siglip.named_parameters()} == {"logit_scale", "logit_bias"}
    assert all(p.requires_grad and p.dim() == 0 for m in (clip, align, siglip) for p in m.parameters())
    assert list(_objective("catlip").parameters()) == []


def test_clip_logit_scale_is_clamped_at_100():
    image, text = _features()
    objective = _objective("clip")
    with torch.no_grad():
        objective.logit_scale.fill_(math.log(500))
    result = objective({"image_features": image, "text_features": text}, {})
    assert_close(result["logit_scale"], torch.tensor(100.0, dtype=torch.float64))
    assert_close(objective.logit_scale.detach(), torch.tensor(math.log(100), dtype=torch.float64))


def test_local_rows_against_all_columns_average_to_the_full_loss():
    """The local-loss algebra, ranks simulated in one process: mean of per-rank losses = full loss."""
    image, text = _features(4)
    scale, temperature, bias = torch.tensor(7.0, dtype=torch.float64), torch.tensor(0.5), torch.tensor(-3.0)
    half = BATCH // 2
    cases = [
        (
            clip_loss(image, text, scale),
            lambda sl, off: clip_loss(
                image[sl], text[sl], scale, all_image_features=image, all_text_features=text, label_offset=off
            ),
        ),
        (
            align_loss(image, text, temperature, 0.1),
            lambda sl, off: align_loss(
                image[sl],
                text[sl],
                temperature,
                0.1,
                all_image_features=image,
                all_text_features=text,
                label_offset=off,
            ),
        ),
        (
            siglip_loss(image, text, scale, bias),
            lambda sl, off: siglip_loss(
                image[sl], text[sl], scale, bias, all_text_features=text, label_offset=off
            ),
        ),
    ]
    for full, local in cases:
        per_rank = [local(slice(0, half), 0), local(slice(half, BATCH), half)]
        assert_close((per_rank[0] + per_rank[1]) / 2, full)
        assert not torch.allclose(per_rank[0], per_rank[1])


def test_objective_config_rejects_bad_values():
    with pytest.raises(ValueError, match="objective name"):
        ObjectiveConfig(name="infonce")
    with pytest.raises(ValueError, match="gather_with_grad"):
        ObjectiveConfig(name="clip", local_loss=True, gather_with_grad=False)
    with pytest.raises(ValueError, match="label_smoothing"):
        ObjectiveConfig(name="align", label_smoothing=1.5)
    with pytest.raises(ValueError, match="text_features"):
        _objective("clip")({"image_features": _features()[0]}, {})


def test_benchmark_quick_smoke():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_objectives.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    for name in ("clip", "align", "siglip", "catlip"):
        assert name in completed.stdout
    assert "catlip speed-up vs clip" in completed.stdout
