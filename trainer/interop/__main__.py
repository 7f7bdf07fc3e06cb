"""``python -m trainer.interop`` / ``export-openclip``: a CLIP/SigLIP checkpoint → an OpenCLIP model directory.

    python -m trainer.interop --checkpoint runs/clip/checkpoints --out exported/tiny-clip

Then, with open_clip installed (``pip install open_clip_torch transformers``)::

    open_clip.add_model_config("exported/tiny-clip/tiny-clip.json")
    model, _, preprocess = open_clip.create_model_and_transforms("tiny-clip", pretrained="exported/tiny-clip/open_clip_pytorch_model.bin")
    tokenizer = open_clip.get_tokenizer("local-dir:exported/tiny-clip")

The way back is ``python -m trainer.train --init-from DIR`` (any OpenCLIP directory that maps).
"""

from __future__ import annotations

import argparse
import sys

from trainer.checkpoint import CheckpointError
from trainer.interop.openclip import InteropError, export_openclip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.interop", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", required=True, help="a step_*.pt file or a checkpoints directory (newest)"
    )
    parser.add_argument("--out", required=True, help="directory to write the OpenCLIP model into")
    parser.add_argument(
        "--name", help="model config name for open_clip.add_model_config (default: the model's)"
    )
    parser.add_argument("--ema", action="store_true", help="export the EMA weights")
    args = parser.parse_args(argv)
    try:
        out = export_openclip(args.checkpoint, args.out, args.name, args.ema)
    except (CheckpointError, InteropError) as error:
        print(f"export-openclip: error: {error}", file=sys.stderr)
        return 2
    print(f"exported to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
