"""What a run leaves in its directory besides checkpoints and metrics: the resolved config
(``config.json``, written when the run starts) and the evaluations during training
(``--eval-every N``: zero-shot on an image folder and/or retrieval on held-out pairs, logged to
``metrics.jsonl`` with ``"split": "eval"`` and to TensorBoard under ``eval/``).

Evaluation runs on rank 0 with the model in eval mode while the other ranks wait; it draws no
random numbers, so a run with evaluations trains exactly as one without (tested).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trainer import distributed
from trainer.data.text import CaptionTokenizer
from trainer.eval.loading import TrainedModel
from trainer.eval.suite import evaluate_heldout, evaluate_image_folder

if TYPE_CHECKING:
    from trainer.loop import Trainer

CONFIG_FILE = "config.json"
VERSIONED = ("torch", "tokenizers", "webdataset", "numpy", "pillow")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def resolved_config(trainer: Trainer) -> dict[str, Any]:
    """Everything that decides what this run computes, as plain values."""
    return {
        "train": trainer.cfg.to_dict(),
        "model": dataclasses.asdict(trainer.model_cfg),
        "total_steps": trainer.total_steps,
        "world_size": trainer.env.world_size,
        "resumed_from": str(trainer.resumed_from) if trainer.resumed_from else None,
        "init_from": trainer.cfg.model.init_from,
        "dataset": {
            "shards": len(trainer.meta.shard_urls),
            "total_samples": trainer.meta.total_samples,
            "meta_dir": trainer.meta.meta_dir,
        },
        "device": str(trainer.device),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "versions": versions(),
        "command": sys.argv,
    }


def write_resolved_config(trainer: Trainer) -> Path:
    """``OUT/config.json`` (temp file, then rename), rewritten by every start or resume of the run."""
    path = Path(trainer.cfg.out_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{CONFIG_FILE}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(resolved_config(trainer), indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _numbers(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    return {
        f"{prefix}/{name}": float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and name != "classes"
    }


@torch.no_grad()
def run_evaluations(trainer: Trainer) -> dict[str, float]:
    cfg, model = trainer.cfg.eval, trainer.module.model
    tokenizer = None
    if trainer.model_cfg.text is not None:
        tokenizer = CaptionTokenizer(trainer.meta.tokenizer_json, trainer.model_cfg.text.context_length)
    trained = TrainedModel(
        model, trainer.model_cfg, trainer.cfg.objective.name, tokenizer, trainer.meta.vocabulary,
        trainer.step, trainer.cfg.to_dict(),
    )  # fmt: skip
    metrics: dict[str, float] = {}
    device = str(trainer.device)
    was_training = model.training
    model.eval()
    try:
        if cfg.image_folder:
            found = evaluate_image_folder(trained, cfg.image_folder, cfg.batch_size, cfg.templates, device)
            metrics.update(_numbers("zero_shot", {k: found[k] for k in ("top1", "top5", "samples")}))
        if cfg.data:
            found = evaluate_heldout(trained, cfg.data, cfg.batch_size, cfg.max_samples, device)
            metrics.update(_numbers(found["task"], found))
            metrics[f"{found['task']}/lost_samples"] = float(sum(found["skipped"].values()))
    finally:
        model.train(was_training)
    return metrics


def evaluate_during_training(trainer: Trainer) -> dict[str, float]:
    """Evaluates on rank 0, logs the metrics, and holds the other ranks until it is done."""
    metrics: dict[str, float] = {}
    if trainer.env.is_main:
        metrics = run_evaluations(trainer)
        trainer.log.log(trainer.step, metrics, split="eval")
    distributed.barrier()
    return metrics
