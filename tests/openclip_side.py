"""The OpenCLIP side of the interop tests; runs in .venv-interop (torch 2.14.1, torchvision, open_clip),
never imports this project. Called by tests/test_interop_openclip.py as a subprocess:

    python tests/openclip_side.py load-export DIR NAME INPUTS OUT
        open_clip.add_model_config(DIR/NAME.json); create_model_and_transforms(NAME, pretrained=weights)
        (strict); also create_model("local-dir:DIR"); tokenise INPUTS' captions with
        get_tokenizer("local-dir:DIR"); save tokens, image/text features, logit scale/bias to OUT.
    python tests/openclip_side.py make-model NAME_OR_JSON DIR INPUTS OUT
        an OpenCLIP model built from a config with random weights (pretrained=None; every parameter
        perturbed so no LayerNorm or bias is trivial), written as an OpenCLIP directory with the BPE
        merges file; tokens from open_clip.get_tokenizer and features saved to OUT.

No hub access: every model is built from a config, weights come from files written here.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import open_clip
import torch
from open_clip.tokenizer import default_bpe


@torch.no_grad()
def features(model: torch.nn.Module, tokenizer, inputs: dict) -> dict:
    model.eval()
    tokens = tokenizer(inputs["captions"])
    return {
        "tokens": tokens,
        "image": model.encode_image(inputs["images"], normalize=True),
        "text": model.encode_text(tokens, normalize=True),
        "logit_scale": model.logit_scale.detach().clone(),
        "logit_bias": None if model.logit_bias is None else model.logit_bias.detach().clone(),
    }


def load_export(directory: Path, name: str, inputs: dict) -> dict:
    open_clip.add_model_config(directory / f"{name}.json")
    model, _, _ = open_clip.create_model_and_transforms(
        name, pretrained=str(directory / "open_clip_pytorch_model.bin")
    )
    result = features(model, open_clip.get_tokenizer(f"local-dir:{directory}"), inputs)
    local = open_clip.create_model(f"local-dir:{directory}")
    result["image_local_dir"] = features(local, open_clip.get_tokenizer(f"local-dir:{directory}"), inputs)[
        "image"
    ]
    result["name_tokens"] = open_clip.get_tokenizer(name)(inputs["captions"])  # via hf_tokenizer_name
    return result


def make_model(name_or_json: str, directory: Path, inputs: dict) -> dict:
    torch.manual_seed(0)
    if name_or_json.endswith(".json"):
        model_cfg = json.loads(Path(name_or_json).read_text())
        name = Path(name_or_json).stem
        open_clip.add_model_config(name_or_json)
    else:
        name, model_cfg = name_or_json, open_clip.get_model_config(name_or_json)
    model = open_clip.create_model(name, pretrained=None)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg}))
    torch.save(model.state_dict(), directory / "open_clip_pytorch_model.bin")
    shutil.copy(default_bpe(), directory / Path(default_bpe()).name)
    return features(model, open_clip.get_tokenizer(name), inputs)


def main(argv: list[str]) -> int:
    command, *args = argv
    inputs = torch.load(args[2], weights_only=True)
    if command == "load-export":
        result = load_export(Path(args[0]), args[1], inputs)
    else:
        result = make_model(args[0], Path(args[1]), inputs)
    torch.save(result, args[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
