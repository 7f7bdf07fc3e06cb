"""TrainConfig: every option of a training run as typed dataclasses, loaded from JSON/YAML + overrides.

Defaults follow the papers: AdamW with betas (0.9, 0.98), eps 1e-6, weight decay 0.2 and
2,000 warm-up steps then cosine decay (CLIP, Radford et al. 2021, §2.5 and Table 19); OpenCLIP's
random resized crop scale (0.9, 1.0); a horizontal flip only for ALIGN (Jia et al. 2021, §4).
``load_train_config(file, overrides)`` merges a config file with ``section.key=value``
overrides (values parsed as YAML); every unknown key or wrong type is a ``ConfigError`` with
a one-line message.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer.models.config import PRESET_OBJECTIVES
from trainer.objectives import ObjectiveConfig
from trainer.typed_config import ConfigError, from_dict

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclass
class AugmentConfig:
    scale: tuple[float, float] = (0.9, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool | None = None  # None: on for ALIGN (its recipe), off for the others
    hue: float = 0.0  # random hue rotation in [-hue, hue] of the colour circle; 0 = off (the papers)
    grayscale: float = 0.0  # probability of a grey image; 0 = off (the papers)


@dataclass
class DataConfig:
    """paths: dataset directories (local or fsspec URLs) and/or shard specs (``pipe:…``, ``…/{0..9}.tar``)."""

    paths: list[str] = field(default_factory=list)
    meta_dir: str | None = None  # where tokenizer.json / vocabulary.json live; default: first dataset dir
    batch_size: int = 32  # per rank, per micro-step
    workers: int = 2
    shuffle_buffer: int = 2000
    shuffle_initial: int = 500
    segment_steps: int = (
        1000  # streams are re-seeded every this many micro-steps (see trainer/data/stream.py)
    )
    v_tau: int | None = None  # None: the vocabulary's own V_tau
    verify_shards: bool = False  # check every shard's size and sha256 against its manifest first
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelSection:
    preset: str = "tiny-clip"  # a preset name or a model JSON/YAML file
    overrides: dict[str, Any] = field(default_factory=dict)
    # an OpenCLIP model directory (open_clip_config.json + weights + tokenizer) to start from; its
    # architecture and tokenizer replace the preset's and the dataset's (trainer/interop/)
    init_from: str | None = None


@dataclass
class OptimConfig:
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.2
    warmup_steps: int = 2000
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    clip_grad_norm: float | None = None
    ema_decay: float | None = None  # e.g. 0.9999; None: no EMA


@dataclass
class RunConfig:
    steps: int | None = None  # optimizer steps; or give epochs
    epochs: float | None = None
    grad_accum: int = 1
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    grad_checkpointing: bool = False
    compile: bool = False
    device: str = "auto"


@dataclass
class CheckpointConfig:
    dir: str | None = None  # default: <out_dir>/checkpoints
    every: int = 1000
    keep_last: int = 3
    resume: str | None = None  # "latest" or a checkpoint path


@dataclass
class EvalConfig:
    """Evaluation during training, every ``every`` optimizer steps (None: never), on rank 0."""

    every: int | None = None
    image_folder: str | None = None  # ROOT/<class>/*.jpg: zero-shot top-1/top-5
    data: list[str] = field(default_factory=list)  # held-out pairs: retrieval (CatLIP: synset hits)
    max_samples: int = 1000  # held-out pairs read per evaluation
    batch_size: int = 64
    templates: str = "clip"  # zero-shot prompt set: clip | simple


@dataclass
class LoggingConfig:
    every: int = 10
    tensorboard: bool = True
    progress: bool = True


@dataclass
class TrainConfig:
    out_dir: str = "runs/default"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.checkpoint.dir or Path(self.out_dir) / "checkpoints")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-3"`` → (["optim", "lr"], 0.001); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    return key.strip().split("."), yaml.safe_load(value) if value.strip() else None


def set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
        if not isinstance(tree, dict):
            raise ConfigError(f"cannot set {'.'.join(path)}: {part} is not a section")
    tree[path[-1]] = value


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot parse {path}: {str(error).splitlines()[0]}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (data, model, optim, …)")
    return data


def load_train_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    values: dict[str, Any] | None = None,
) -> TrainConfig:
    """A config file (optional) with ``section.key=value`` overrides applied, as a TrainConfig.

    ``values`` (dotted key → typed value, e.g. the CLI's flags) apply after the file and before the
    ``overrides`` (``section.key=value`` strings read as YAML, ``--set``). The objective defaults to
    the one the model preset is built for (``PRESET_OBJECTIVES``).
    """
    tree = read_config_file(path) if path else {}
    for key, value in (values or {}).items():
        set_path(tree, key.split("."), value)
    for override in overrides:
        set_path(tree, *parse_override(override))
    preset = str(tree.get("model", {}).get("preset", ModelSection.preset))
    if preset in PRESET_OBJECTIVES and "name" not in tree.get("objective", {}):
        set_path(tree, ["objective", "name"], PRESET_OBJECTIVES[preset])
    return from_dict(TrainConfig, tree, "config")


def validate(cfg: TrainConfig) -> None:
    """Checks the options that need no data; raises ConfigError naming the option to change."""
    data, run, optim = cfg.data, cfg.run, cfg.optim
    _check(bool(data.paths), "no training data: pass --data DIR (a curated dataset directory)")
    _check(data.batch_size >= 1, f"data.batch_size must be >= 1, got {data.batch_size}")
    _check(data.workers >= 0, f"data.workers must be >= 0, got {data.workers}")
    _check(data.segment_steps >= 1, f"data.segment_steps must be >= 1, got {data.segment_steps}")
    _check(
        data.shuffle_buffer >= 0 and data.shuffle_initial >= 0,
        "data.shuffle_buffer/shuffle_initial must be >= 0",
    )
    low, high = data.augment.scale
    _check(
        0 < low <= high <= 1,
        f"data.augment.scale must satisfy 0 < low <= high <= 1, got {data.augment.scale}",
    )
    _check(0 <= data.augment.hue <= 0.5, f"data.augment.hue must be in [0, 0.5], got {data.augment.hue}")
    _check(
        0 <= data.augment.grayscale <= 1,
        f"data.augment.grayscale must be in [0, 1], got {data.augment.grayscale}",
    )
    _check(
        (run.steps is None) != (run.epochs is None),
        "give exactly one of --steps or --epochs (run.steps / run.epochs)",
    )
    _check((run.steps or 1) >= 1 and (run.epochs or 1) > 0, "run.steps / run.epochs must be positive")
    _check(run.grad_accum >= 1, f"run.grad_accum must be >= 1, got {run.grad_accum}")
    _check(run.precision in PRECISIONS, f"run.precision must be one of {PRECISIONS}, got {run.precision!r}")
    _check(
        run.device in ("auto", "cpu", "cuda") or run.device.startswith("cuda:"),
        f"run.device must be auto, cpu, cuda or cuda:N, got {run.device!r}",
    )
    _check(optim.lr > 0 and optim.warmup_steps >= 0, "optim.lr must be > 0 and optim.warmup_steps >= 0")
    _check(0 <= optim.min_lr_ratio <= 1, f"optim.min_lr_ratio must be in [0, 1], got {optim.min_lr_ratio}")
    _check(optim.ema_decay is None or 0 < optim.ema_decay < 1, "optim.ema_decay must be in (0, 1) or null")
    _check(
        optim.clip_grad_norm is None or optim.clip_grad_norm > 0, "optim.clip_grad_norm must be > 0 or null"
    )
    _check(
        cfg.checkpoint.every >= 1 and cfg.checkpoint.keep_last >= 1, "checkpoint.every/keep_last must be >= 1"
    )
    _check(cfg.logging.every >= 1, f"logging.every must be >= 1, got {cfg.logging.every}")
    evaluation = cfg.eval
    if evaluation.every is not None:
        _check(evaluation.every >= 1, f"eval.every must be >= 1, got {evaluation.every}")
        _check(
            bool(evaluation.image_folder or evaluation.data),
            "--eval-every needs something to evaluate on: --eval-image-folder DIR and/or --eval-data DIR",
        )
    _check(
        evaluation.image_folder is None or Path(evaluation.image_folder).is_dir(),
        f"eval.image_folder {evaluation.image_folder} is not a directory: pass ROOT/<class>/*.jpg",
    )
    _check(evaluation.templates in ("clip", "simple"), "eval.templates must be clip or simple")
    _check(
        evaluation.max_samples >= 1 and evaluation.batch_size >= 1, "eval.max_samples/batch_size must be >= 1"
    )
    init_from = cfg.model.init_from
    _check(
        init_from is None or Path(init_from).is_dir(),
        f"model.init_from {init_from} is not a directory: pass an OpenCLIP model directory "
        "(open_clip_config.json + weights), e.g. one written by export-openclip",
    )
    resume = cfg.checkpoint.resume
    _check(
        resume in (None, "latest") or Path(resume).exists(),
        f"checkpoint {resume} does not exist: pass --resume latest or a path under {cfg.checkpoint_dir}",
    )


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
