"""The one training loop for every objective (CLIP, ALIGN, SigLIP, CatLIP).

Model and objective are wrapped in one module (``TrainModule``) so DDP averages the gradients of
both, including the objective's learnable temperature/scale. Per optimizer step: ``grad_accum``
micro-batches (DDP's ``no_sync`` on all but the last), autocast (bf16 on CUDA by default, fp32
on CPU), optional gradient clipping, AdamW, the LR schedule, the EMA. Checkpoints every
``checkpoint.every`` steps and at the end hold everything a resumed run needs to continue as if
never stopped: weights, optimizer, scheduler, scaler, EMA, and per rank the RNG states and the
data position (see ``trainer/data/stream.py``).

Accumulation: CatLIP's loss is a mean over samples, so its micro-batch gradients simply add up.
The pairwise objectives (CLIP, ALIGN, SigLIP) keep the whole accumulated batch as negatives: their
steps run through ``trainer/accumulate.py`` (feature cache, recompute per micro-batch), and the
gradients are then averaged across ranks here instead of by DDP's reducer.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from trainer import distributed
from trainer.accumulate import full_batch_backward
from trainer.checkpoint import (
    capture_rng_state,
    checkpoint_path,
    find_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    restore_rng_state,
    save_checkpoint,
    seed_everything,
)
from trainer.config import ConfigError, TrainConfig, validate
from trainer.data import CaptionTokenizer, DatasetMeta, build_train_batches, resolve_dataset, to_device
from trainer.data.stream import derive_seed
from trainer.data.verify import check_shards
from trainer.interop.openclip import ImportedModel, import_openclip
from trainer.metrics_log import MetricsLog
from trainer.models import ModelConfig, build_model, load_model_config
from trainer.objectives import build_objective, objective_class
from trainer.optim import build_ema, build_optimizer, build_scheduler, clip_gradients
from trainer.run_record import evaluate_during_training, write_resolved_config


class TrainModule(nn.Module):
    """Model + objective as one module: ``forward(batch) -> {"loss", ...metrics}``."""

    def __init__(self, model: nn.Module, objective: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def features(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if self.objective.needs_text:
            return self.model(batch["image"], batch["tokens"])
        return self.model(batch["image"])

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.objective(self.features(batch), batch)


@dataclass
class TrainResult:
    step: int
    checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    rank: int = 0


def resolve_model_config(
    cfg: TrainConfig, meta: DatasetMeta, imported: ImportedModel | None = None
) -> ModelConfig:
    """The preset/file with overrides (or an imported OpenCLIP model's architecture), sized to the
    tokenizer and synset vocabulary it will train with."""
    try:
        model_cfg = (
            imported.config if imported else load_model_config(cfg.model.preset, **cfg.model.overrides)
        )
    except ValueError as error:
        raise ConfigError(f"model: {error}") from error
    two_tower = objective_class(cfg.objective.name).needs_text
    if two_tower and model_cfg.text is None:
        raise ConfigError(
            f"objective {cfg.objective.name} needs a text tower; model {model_cfg.name} is image-only"
        )
    if not two_tower and model_cfg.text is not None:
        raise ConfigError(
            f"objective catlip trains an image-only model; use a *-catlip preset, not {model_cfg.name}"
        )
    changes: dict[str, Any] = {"grad_checkpointing": cfg.run.grad_checkpointing}
    if two_tower and imported is None:
        tokenizer = CaptionTokenizer(meta.tokenizer_json, model_cfg.text.context_length)
        changes["text"] = dataclasses.replace(
            model_cfg.text, vocab_size=tokenizer.vocab_size, eos_id=tokenizer.eos_id
        )
    elif not two_tower:
        changes["num_classes"] = len(meta.vocabulary.ids)
    return dataclasses.replace(model_cfg, **changes)


def total_steps(cfg: TrainConfig, meta: DatasetMeta, world_size: int) -> int:
    if cfg.run.steps is not None:
        return cfg.run.steps
    if meta.total_samples is None:
        raise ConfigError(
            "run.epochs needs the sample count: train on dataset directories (manifest.json) or give --steps"
        )
    per_step = cfg.data.batch_size * world_size * cfg.run.grad_accum
    return max(1, math.ceil(cfg.run.epochs * meta.total_samples / per_step))


def default_hflip(cfg: TrainConfig) -> bool:
    """Horizontal flips are ALIGN's augmentation (random crop + flip); CLIP trains with crops only."""
    flips = objective_class(cfg.objective.name).flips_images
    return cfg.data.augment.hflip if cfg.data.augment.hflip is not None else flips


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[precision]


class Trainer:
    """Builds everything for one run on this rank; ``run()`` trains until the last (or ``stop_at``) step."""

    def __init__(self, cfg: TrainConfig, env: distributed.DistEnv, device: torch.device) -> None:
        self.cfg, self.env, self.device = cfg, env, device
        needs_text = objective_class(cfg.objective.name).needs_text
        self.meta = resolve_dataset(
            cfg.data.paths, cfg.data.meta_dir, cfg.data.v_tau, needs_text, not needs_text
        )
        if cfg.data.verify_shards:
            check_shards(self.meta, env.is_main and cfg.logging.progress)
        self.imported = import_openclip(cfg.model.init_from) if cfg.model.init_from else None
        if self.imported is not None:  # the imported model's own tokenizer, not the dataset's
            self.meta = dataclasses.replace(self.meta, tokenizer_json=self.imported.tokenizer_json)
        self.model_cfg = resolve_model_config(cfg, self.meta, self.imported)
        self.total_steps = total_steps(cfg, self.meta, env.world_size)
        seed_everything(cfg.seed)  # the same initial weights on every rank
        self.module = TrainModule(build_model(self.model_cfg), build_objective(cfg.objective)).to(device)
        if self.imported is not None:
            self.imported.load_into(self.module.model, self.module.objective)
        self.optimizer = build_optimizer(self.module, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, self.total_steps)
        self.ema = build_ema(self.module.model, cfg.optim.ema_decay)
        self.amp_dtype = autocast_dtype(cfg.run.precision, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.step, data_state = 0, None
        seed_everything(derive_seed(cfg.seed, "rank", env.rank))  # dropout etc. differ between ranks
        self.resumed_from = find_checkpoint(cfg.checkpoint_dir, cfg.checkpoint.resume)
        if self.resumed_from is not None:
            data_state = self._restore(load_checkpoint(self.resumed_from, map_location=device))
        self.ddp = (
            DistributedDataParallel(self.module, device_ids=[device.index] if device.type == "cuda" else None)
            if env.distributed
            else None
        )
        wrapped = self.ddp or self.module
        self.forward = torch.compile(wrapped) if cfg.run.compile else wrapped
        self.batches = build_train_batches(
            cfg.data,
            self.meta,
            image_size=self.model_cfg.vision.image_size,
            context_length=self.model_cfg.text.context_length if needs_text else None,
            hflip=default_hflip(cfg),
            seed=cfg.seed,
            rank=env.rank,
            state=data_state,
            pin_memory=device.type == "cuda",
        )
        self.log = MetricsLog(Path(cfg.out_dir), env.is_main, cfg.logging.tensorboard, start_step=self.step)
        if env.is_main:
            write_resolved_config(self)

    def _restore(self, state: dict[str, Any]) -> dict[str, Any] | None:
        try:
            self.module.model.load_state_dict(state["model"])
            self.module.objective.load_state_dict(state["objective"])
        except RuntimeError as error:
            raise ConfigError(
                f"checkpoint {self.resumed_from} does not fit this model: {str(error).splitlines()[0]}"
            ) from error
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.step = int(state["step"])
        rank_states = state.get("rank_states", [])
        if len(rank_states) != self.env.world_size:
            warnings.warn(
                f"checkpoint {self.resumed_from} was written by {len(rank_states)} ranks, this run has "
                f"{self.env.world_size}: weights and optimizer resume, RNG and data streams start fresh",
                stacklevel=2,
            )
            return None
        restore_rng_state(rank_states[self.env.rank]["rng"])
        return rank_states[self.env.rank]["data"]

    def param_checksum(self) -> list[float]:
        """Sum and sum of squares of every parameter: DDP keeps ranks bitwise equal, so these must match."""
        with torch.no_grad():
            flat = [p.detach().double() for p in self.module.parameters()]
            return [float(sum(p.sum() for p in flat)), float(sum(p.pow(2).sum() for p in flat))]

    def checkpoint_state(self) -> dict[str, Any]:
        """The whole run's state; per-rank parts (RNG, data position) gathered from every rank."""
        rank_state = {
            "rng": capture_rng_state(),
            "data": self.batches.state_dict(),
            "param_checksum": self.param_checksum(),
        }
        rank_states = distributed.gather_objects(rank_state)
        checksums = [state["param_checksum"] for state in rank_states]
        if any(checksum != checksums[0] for checksum in checksums):
            raise RuntimeError(
                f"ranks hold different weights at step {self.step} (checksums {checksums}): DDP diverged"
            )
        return {
            "format": 1,
            "step": self.step,
            "model": self.module.model.state_dict(),
            "objective": self.module.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rank_states": rank_states,
            "config": self.cfg.to_dict(),
            "model_config": dataclasses.asdict(self.model_cfg),
            "tokenizer_json": self.meta.tokenizer_json,
            "vocabulary": self.meta.vocabulary.to_state() if self.meta.vocabulary else None,
            "world_size": self.env.world_size,
        }

    def save(self) -> Path:
        state = self.checkpoint_state()  # collective: every rank takes part
        path = checkpoint_path(self.cfg.checkpoint_dir, self.step)
        if self.env.is_main:
            save_checkpoint(path, state)
            prune_checkpoints(self.cfg.checkpoint_dir, self.cfg.checkpoint.keep_last)
        distributed.barrier()
        return path

    def autocast(self) -> torch.autocast | nullcontext:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @property
    def full_batch_accumulation(self) -> bool:
        """Pairwise objectives with grad_accum > 1 take the feature-cache path (trainer/accumulate.py)."""
        return self.cfg.run.grad_accum > 1 and objective_class(self.cfg.objective.name).pairwise

    def _next_batch(self) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        batch = to_device(next(self.batches), self.device)
        return batch, time.perf_counter() - started

    def _accumulate_micro_batches(self) -> tuple[dict[str, torch.Tensor], float]:
        """Per micro-batch losses, their gradients summed (DDP syncs on the last one)."""
        accum = self.cfg.run.grad_accum
        sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        data_time = 0.0
        for micro in range(accum):
            batch, waited = self._next_batch()
            data_time += waited
            sync = self.ddp is None or micro == accum - 1
            with nullcontext() if sync else self.ddp.no_sync():
                with self.autocast():
                    outputs = self.forward(batch)
                self.scaler.scale(outputs["loss"] / accum).backward()
            for name, value in outputs.items():
                sums[name] += value.detach().float() / accum
        return sums, data_time

    def _accumulate_full_batch(self) -> tuple[dict[str, torch.Tensor], float]:
        """One loss over all micro-batches (full-batch negatives), gradients averaged across ranks."""
        micro_batches, data_time = [], 0.0
        for _ in range(self.cfg.run.grad_accum):
            batch, waited = self._next_batch()
            micro_batches.append(batch)
            data_time += waited
        outputs = full_batch_backward(
            self.module.features,
            self.module.objective,
            self.module.model,
            micro_batches,
            device=self.device,
            autocast=self.autocast,
            scale=self.scaler.scale,
        )
        distributed.average_gradients(list(self.module.parameters()))
        distributed.broadcast_buffers(self.module)
        return {name: value.float() for name, value in outputs.items()}, data_time

    def train_step(self) -> tuple[dict[str, torch.Tensor], float]:
        """One optimizer step over ``grad_accum`` micro-batches; returns metrics and data wait time."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.full_batch_accumulation:
            sums, data_time = self._accumulate_full_batch()
        else:
            sums, data_time = self._accumulate_micro_batches()
        if self.cfg.optim.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            sums["grad_norm"] = clip_gradients(
                list(self.module.parameters()), self.cfg.optim.clip_grad_norm
            ).detach()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.module.model)
        self.step += 1
        return sums, data_time

    def run(self, stop_at: int | None = None) -> TrainResult:
        cfg, last = self.cfg, self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        self.module.train()
        progress = tqdm(
            total=self.total_steps, initial=self.step, disable=not (self.env.is_main and cfg.logging.progress)
        )
        window: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        window_steps, window_data, window_start = 0, 0.0, time.perf_counter()
        metrics: dict[str, float] = {}
        saved = None
        try:
            while self.step < last:
                sums, data_time = self.train_step()
                for name, value in sums.items():
                    window[name] += value
                window_steps, window_data = window_steps + 1, window_data + data_time
                progress.update(1)
                if self.step % cfg.logging.every == 0 or self.step == last:
                    metrics = self._log_window(
                        window, window_steps, window_data, time.perf_counter() - window_start
                    )
                    progress.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{metrics['lr']:.2e}")
                    window.clear()
                    window_steps, window_data, window_start = 0, 0.0, time.perf_counter()
                if cfg.eval.every and (self.step % cfg.eval.every == 0 or self.step == last):
                    evaluate_during_training(self)
                if self.step % cfg.checkpoint.every == 0 or self.step == last:
                    saved = self.save()
        finally:
            progress.close()
            self.batches.close()
            self.log.close()
        return TrainResult(self.step, saved, metrics, self.global_failures(), self.env.rank)

    def global_failures(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for failures in distributed.gather_objects(dict(self.batches.failures)):
            for reason, count in failures.items():
                totals[reason] += count
        return dict(totals)

    def _log_window(
        self, window: dict[str, torch.Tensor], steps: int, data_time: float, elapsed: float
    ) -> dict[str, float]:
        names = sorted(window)
        means = distributed.mean_across_ranks(torch.stack([window[name] / steps for name in names]))
        metrics = {name: float(value) for name, value in zip(names, means.tolist())}
        if not math.isfinite(metrics["loss"]):
            raise FloatingPointError(
                f"loss is {metrics['loss']} at step {self.step}: lower optim.lr or set optim.clip_grad_norm"
            )
        samples = steps * self.cfg.run.grad_accum * self.cfg.data.batch_size * self.env.world_size
        failures = self.global_failures()
        metrics.update(
            lr=self.scheduler.get_last_lr()[0],
            samples_per_s=samples / max(elapsed, 1e-9),
            data_time_fraction=data_time / max(elapsed, 1e-9),
            skipped=sum(failures.values()),
            **{f"skipped/{reason}": count for reason, count in failures.items()},
        )
        self.log.log(self.step, metrics)
        return metrics


def train(cfg: TrainConfig, stop_at: int | None = None) -> TrainResult:
    """Validates ``cfg``, joins the process group the launcher describes, trains, leaves the group."""
    validate(cfg)
    env = distributed.resolve_from_os()
    device = distributed.init_distributed(env, cfg.run.device)
    try:
        return Trainer(cfg, env, device).run(stop_at)
    finally:
        distributed.shutdown()
