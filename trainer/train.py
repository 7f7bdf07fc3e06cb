"""``python -m trainer.train``: train CLIP / ALIGN / SigLIP / CatLIP on curated dataset directories.

Single process::

    python -m trainer.train --data out/dataset --preset tiny-clip --steps 1000 --out runs/clip

Several GPUs or CPU processes (torchrun sets the ranks; SLURM's ``srun`` works as well)::

    torchrun --nproc_per_node 8 -m trainer.train --config run.yaml --resume latest

Options come from ``--config`` (JSON/YAML with the sections of ``trainer.config.TrainConfig``),
then the flags below, then ``--set section.key=value`` (YAML values). Mistakes in options, paths
or checkpoints end with a one-line ``train: error: …`` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trainer.checkpoint import CheckpointError
from trainer.config import ConfigError, TrainConfig, load_train_config, validate
from trainer.data import DatasetError
from trainer.interop.openclip import InteropError

# flag -> dotted config key
FLAGS = {
    "meta_dir": "data.meta_dir",
    "batch_size": "data.batch_size",
    "workers": "data.workers",
    "v_tau": "data.v_tau",
    "preset": "model.preset",
    "objective": "objective.name",
    "steps": "run.steps",
    "epochs": "run.epochs",
    "grad_accum": "run.grad_accum",
    "precision": "run.precision",
    "device": "run.device",
    "lr": "optim.lr",
    "out": "out_dir",
    "seed": "seed",
    "resume": "checkpoint.resume",
    "checkpoint_every": "checkpoint.every",
    "init_from": "model.init_from",
    "eval_every": "eval.every",
    "eval_image_folder": "eval.image_folder",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="JSON/YAML file with TrainConfig sections")
    p.add_argument("--data", action="append", help="dataset directory or shard spec (repeatable)")
    p.add_argument(
        "--meta-dir", help="directory with tokenizer.json/vocabulary.json (default: first --data dir)"
    )
    p.add_argument("--preset", help="model preset or model JSON/YAML (tiny-clip, vit-b-16-clip, …)")
    p.add_argument("--objective", help="clip | align | siglip | catlip (default: from the preset's name)")
    p.add_argument("--steps", type=int, help="optimizer steps")
    p.add_argument("--epochs", type=float, help="passes over the data (instead of --steps)")
    p.add_argument("--batch-size", type=int, help="per rank, per micro-step")
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--workers", type=int, help="DataLoader workers per rank")
    p.add_argument("--v-tau", type=int, help="re-prune the synset vocabulary at load time")
    p.add_argument("--lr", type=float)
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--out", help="run directory (metrics.jsonl, tensorboard/, checkpoints/)")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", help="'latest' or a checkpoint path")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument(
        "--init-from", help="start from an OpenCLIP model directory (its architecture, weights and tokenizer)"
    )
    p.add_argument(
        "--verify-shards", action="store_true", help="check shard sizes and sha256 against the manifest first"
    )
    p.add_argument("--eval-every", type=int, help="evaluate every N steps (zero-shot and/or retrieval)")
    p.add_argument("--eval-image-folder", help="ROOT/<class>/*.jpg for zero-shot during training")
    p.add_argument(
        "--eval-data", action="append", help="held-out dataset directory for retrieval (repeatable)"
    )
    p.add_argument("--stop-at", type=int, help="stop after this step with a checkpoint (time-limited jobs)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any option, e.g. optim.warmup_steps=500",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    return p


def values_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as typed values by dotted config key (argparse already typed them)."""
    values = {key: getattr(args, flag) for flag, key in FLAGS.items() if getattr(args, flag) is not None}
    if args.data:
        values["data.paths"] = list(args.data)
    if args.eval_data:
        values["eval.data"] = list(args.eval_data)
    if args.verify_shards:
        values["data.verify_shards"] = True
    return values


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's TrainConfig: ``--config``, then the flags (typed), then ``--set`` (YAML values)."""
    return load_train_config(args.config, list(args.set), values_from_flags(args))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
        if args.print_config:
            print(json.dumps(cfg.to_dict(), indent=2))
            return 0
        validate(cfg)
        from trainer.loop import train  # torch-heavy: only once the options are known to be sound

        result = train(cfg, stop_at=args.stop_at)
    except (ConfigError, DatasetError, CheckpointError, InteropError) as error:
        print(f"train: error: {error}", file=sys.stderr)
        return 2
    if result.rank != 0:
        return 0
    summary: dict[str, Any] = {
        "step": result.step,
        "checkpoint": str(result.checkpoint),
        "skipped": result.failures,
    }
    summary.update(
        {k: round(v, 5) for k, v in result.metrics.items() if k in ("loss", "accuracy", "samples_per_s")}
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
