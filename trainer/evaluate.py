"""``python -m trainer.evaluate``: metrics of a checkpoint on held-out shards or an ImageFolder.

    python -m trainer.evaluate --checkpoint runs/clip/checkpoints --image-folder eval/objects
    python -m trainer.evaluate --checkpoint runs/clip/checkpoints/step_00001000.pt --data out/heldout

``--image-folder ROOT`` (``ROOT/<class name>/*.jpg``): zero-shot top-1/top-5, with prompt
templates for two-tower models and through the synset head for CatLIP. ``--data DIR``
(curated shards): image↔text recall@1/5/10, or CatLIP's top-1 synset hit rate and mAP.
The metrics are printed as JSON and, with ``--out``, written to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainer.checkpoint import CheckpointError
from trainer.data import DatasetError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a step_*.pt file or a checkpoints directory (newest)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--image-folder", help="ROOT/<class name>/*.jpg for zero-shot classification")
    where.add_argument(
        "--data", action="append", help="held-out dataset directory or shard spec (repeatable)"
    )
    p.add_argument("--ema", action="store_true", help="evaluate the EMA weights")
    p.add_argument(
        "--recalibrate-bn",
        type=int,
        default=0,
        metavar="BATCHES",
        help="recompute BatchNorm statistics over this many batches of the run's training data first",
    )
    p.add_argument("--templates", choices=["clip", "simple"], default="clip", help="zero-shot prompt set")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-samples", type=int, default=10_000, help="held-out pairs used for retrieval")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="write the metrics JSON here too")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from trainer.eval import (
        evaluate_heldout,
        evaluate_image_folder,
        load_trained,
        recalibrate_from_training_data,
    )

    try:
        trained = load_trained(args.checkpoint, use_ema=args.ema, device=args.device)
        recalibrated = recalibrate_from_training_data(
            trained, args.recalibrate_bn, args.batch_size, args.device
        )
        if args.image_folder:
            metrics = evaluate_image_folder(
                trained, args.image_folder, args.batch_size, args.templates, args.device
            )
        else:
            metrics = evaluate_heldout(trained, args.data, args.batch_size, args.max_samples, args.device)
    except (CheckpointError, DatasetError, FileNotFoundError) as error:
        print(f"evaluate: error: {error}", file=sys.stderr)
        return 2
    metrics = {
        "checkpoint": str(args.checkpoint),
        "step": trained.step,
        "objective": trained.objective,
        **metrics,
    }
    if recalibrated:
        metrics["batchnorm_recalibrated_on"] = recalibrated
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
