"""The one training loop: every objective trains on the fixture, accumulation, logging, options, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.trainer_fixtures import make_dataset, make_image_folder, torch_threads
from trainer.checkpoint import load_checkpoint
from trainer.config import ConfigError, load_train_config, validate
from trainer.loop import train
from trainer.metrics_log import read_records
from trainer.models import build_model, load_model_config
from trainer.objectives import ObjectiveConfig, build_objective
from trainer.optim import WarmupCosine, build_optimizer
from trainer.train import main as train_main

SMALL_VIT = {"kind": "vit", "image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "heads": 2}
SMALL_TEXT = {"width": 32, "layers": 1, "heads": 2, "context_length": 12}


def small_model(preset: str) -> dict:
    """``model.overrides`` for a CPU-sized tower of ``preset`` (typed, as the CLI's flags are applied)."""
    vision = {"image_size": 32} if preset == "tiny-align" else SMALL_VIT
    return {"vision": vision, "embed_dim": 32, **({} if preset == "tiny-catlip" else {"text": SMALL_TEXT})}


def small_overrides(preset: str) -> str:
    """The same as a ``--set`` argument (JSON is YAML)."""
    return f"model.overrides={json.dumps(small_model(preset))}"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("loop") / "ds", 128, image_size=40)


def config(dataset: Path, out: Path, preset: str, *extra: str):
    """A 30-step CPU run of ``preset``; ``extra`` are ``--set``-style overrides."""
    values = {
        "data.paths": [str(dataset)], "model.preset": preset, "out_dir": str(out), "run.steps": 30,
        "data.batch_size": 16, "data.workers": 0, "optim.lr": 2e-3, "optim.warmup_steps": 3,
        "logging.every": 1, "logging.progress": False, "model.overrides": small_model(preset),
    }  # fmt: skip
    return load_train_config(None, list(extra), values)


@pytest.mark.parametrize("preset", ["tiny-clip", "tiny-align", "tiny-siglip", "tiny-catlip"])
def test_every_objective_trains_and_its_loss_falls(dataset: Path, tmp_path: Path, preset: str) -> None:
    cfg = config(dataset, tmp_path, preset)
    assert cfg.objective.name == preset.removeprefix("tiny-")  # the objective follows the preset
    result = train(cfg)
    records = read_records(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 31))
    losses = [r["loss"] for r in records]
    assert all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, losses
    last = records[-1]
    for field in ("lr", "samples_per_s", "data_time_fraction", "skipped", "skipped/image_decode_error"):
        assert field in last
    assert (
        last["skipped"] == sum(result.failures.values()) == last["skipped/image_decode_error"] >= 1
    )  # the corrupt fixture image
    assert result.checkpoint == tmp_path / "checkpoints" / "step_00000030.pt"
    assert any((tmp_path / "tensorboard").iterdir())


def test_gradient_accumulation_matches_one_large_batch(dataset: Path, tmp_path: Path) -> None:
    # CatLIP's loss is a per-sample mean, so 2 x 8 accumulated equals one batch of 16 from the same stream.
    def weights(name: str, *options: str) -> dict:
        result = train(
            config(
                dataset, tmp_path / name, "tiny-catlip", "run.steps=4", "optim.clip_grad_norm=1.0", *options
            )
        )
        return load_checkpoint(result.checkpoint)["model"]

    big = weights("big", "data.batch_size=16")
    accumulated = weights("accumulated", "data.batch_size=8", "run.grad_accum=2")
    small = weights("small", "data.batch_size=8")
    assert all(torch.allclose(big[k], accumulated[k], atol=1e-5) for k in big)
    assert not all(torch.allclose(big[k], small[k], atol=1e-5) for k in big)  # the comparison can fail


def test_weight_decay_skips_gains_biases_and_temperatures() -> None:
    model = build_model(
        load_model_config(
            "tiny-clip",
            vision={"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "heads": 2},
            embed_dim=32,
        )
    )
    objective = build_objective(ObjectiveConfig("clip"))
    module = torch.nn.ModuleDict({"model": model, "objective": objective})
    decay, no_decay = build_optimizer(module, load_train_config().optim).param_groups
    assert decay["weight_decay"] == 0.2 and no_decay["weight_decay"] == 0.0
    assert any(p is objective.logit_scale for p in no_decay["params"])
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(module.parameters()))


def test_schedule_warms_up_linearly_then_follows_a_cosine() -> None:
    schedule = WarmupCosine(warmup=4, total=12, min_ratio=0.1)
    assert [schedule(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert schedule(8) == pytest.approx(0.1 + 0.9 * 0.5)
    assert schedule(12) == pytest.approx(0.1) and schedule(50) == pytest.approx(0.1)


def test_config_file_then_overrides_with_paper_defaults(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("optim:\n  lr: 0.01\n  warmup_steps: 7\nmodel:\n  preset: tiny-catlip\n")
    cfg = load_train_config(file, ["optim.lr=1e-3", "data.paths=[a, b]", "run.steps=5"])
    assert cfg.optim.lr == 0.001 and cfg.optim.warmup_steps == 7
    assert (cfg.optim.betas, cfg.optim.eps, cfg.optim.weight_decay) == ((0.9, 0.98), 1e-6, 0.2)
    assert cfg.objective.name == "catlip" and cfg.data.paths == ["a", "b"]
    validate(cfg)
    with pytest.raises(ConfigError, match=r"unknown option config.optim.lrr"):
        load_train_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match=r"config.data.batch_size must be int"):
        load_train_config(None, ["data.batch_size=many"])
    with pytest.raises(ConfigError, match="exactly one of --steps or --epochs"):
        validate(load_train_config(None, ["data.paths=[a]"]))


def test_cli_mistakes_end_in_one_line_errors(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert train_main(["--data", str(tmp_path / "nowhere"), "--steps", "1", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("train: error: dataset dir") and "run curate first or pass --data" in error
    assert "\n" not in error
    assert (
        train_main(["--data", str(dataset), "--steps", "1", "--preset", "tiny-clip", "--objective", "catlip"])
        == 2
    )
    assert "use a *-catlip preset" in capsys.readouterr().err
    assert train_main(["--data", str(dataset), "--steps", "1", "--resume", str(tmp_path / "x.pt")]) == 2
    assert "does not exist: pass --resume latest" in capsys.readouterr().err


def test_cli_trains_and_prints_a_summary(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = train_main(
        ["--data", str(dataset), "--preset", "tiny-catlip", "--steps", "3", "--batch-size", "8", "--workers", "0",
         "--out", str(tmp_path), "--set", small_overrides("tiny-catlip"), "--set", "logging.progress=false"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 3 and summary["checkpoint"].endswith("step_00000003.pt")
    state = load_checkpoint(Path(summary["checkpoint"]))
    assert state["config"]["objective"]["name"] == "catlip" and state["vocabulary"]["ids"]


def test_eval_every_logs_zero_shot_and_retrieval_without_changing_training(
    dataset: Path, tmp_path: Path
) -> None:
    folder = make_image_folder(tmp_path / "folder", per_class=2, image_size=40)
    plain = train(config(dataset, tmp_path / "plain", "tiny-clip", "run.steps=4"))
    evaluated = train(
        config(dataset, tmp_path / "eval", "tiny-clip", "run.steps=4", "eval.every=2",
               f"eval.image_folder={folder}", f"eval.data=[{dataset}]", "eval.max_samples=32")
    )  # fmt: skip
    records = [r for r in read_records(tmp_path / "eval" / "metrics.jsonl") if r["split"] == "eval"]
    assert [r["step"] for r in records] == [2, 4]
    for record in records:
        assert 0 <= record["zero_shot/top1"] <= 1 and record["zero_shot/samples"] == 8
        assert 0 <= record["retrieval/image_to_text_R@1"] <= 1 and record["retrieval/samples"] == 32
    # Evaluation draws no random numbers: the run trains exactly as one without it.
    a, b = load_checkpoint(plain.checkpoint)["model"], load_checkpoint(evaluated.checkpoint)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    resolved = json.loads((tmp_path / "eval" / "config.json").read_text())
    assert resolved["train"]["eval"]["every"] == 2 and resolved["model"]["text"]["vocab_size"] > 5
    assert resolved["torch_threads"] == 1 and resolved["versions"]["torch"] == torch.__version__
    with pytest.raises(ConfigError, match="--eval-every needs something to evaluate on"):
        validate(config(dataset, tmp_path, "tiny-clip", "eval.every=2"))
