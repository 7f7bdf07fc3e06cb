"""OpenCLIP model directories in and out: an exact state-dict mapping onto this project's towers.

The ViT image tower and the causal CLIP text tower here have OpenCLIP's layout parameter for
parameter (``trainer/models/vit.py``, ``text.py``); only names differ:

    here                                   OpenCLIP
    visual.…                               visual.…
    text.token_embedding / positional_…    token_embedding / positional_embedding
    text.transformer / text.ln_final / …   transformer / ln_final / text_projection
    ….blocks.N.attn.in_proj.weight         ….resblocks.N.attn.in_proj_weight (same for bias)
    ….mlp.fc1 / ….mlp.fc2                  ….mlp.c_fc / ….mlp.c_proj
    objective.logit_scale / logit_bias     logit_scale / logit_bias (SigLIP)

An OpenCLIP model directory (what ``create_model("local-dir:DIR")`` and the hub repos use) holds
``open_clip_config.json`` (``{"model_cfg": …, "preprocess_cfg": …}``), the weights
(``open_clip_pytorch_model.bin``) and the tokenizer. Export writes one, plus ``NAME.json`` (the bare
model config for ``open_clip.add_model_config``) and the dataset's tokenizer as ``tokenizer.json``
with the files ``transformers`` needs (OpenCLIP's ``HFTokenizer``; text pooled at the end-of-text
token with ``pool_type: eos``). Import reads one: ``tokenizer.json`` when its config names an HF
tokenizer, else OpenAI's BPE from ``bpe_simple_vocab_16e6.txt.gz`` in the directory (the file
OpenCLIP ships), converted by ``clip_bpe.py``. Architectures with parts the towers here lack
(timm or HF towers, layer scale, attention pooling, …) are refused with the option's name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.checkpoint import CheckpointError, find_checkpoint, load_checkpoint
from trainer.data.text import CaptionTokenizer
from trainer.data.transforms import CLIP_MEAN, CLIP_STD
from trainer.interop.clip_bpe import VOCAB_FILE, clip_bpe_tokenizer
from trainer.models import ModelConfig, TextConfig, VisionConfig, model_config_from_dict

OPENCLIP_CONFIG = "open_clip_config.json"
WEIGHTS = "open_clip_pytorch_model.bin"
WEIGHT_NAMES = (WEIGHTS, "open_clip_pytorch_model.pth", "pytorch_model.bin", "model.pth", "model.pt")
EXPORTABLE = ("clip", "siglip")
# name here -> name in OpenCLIP, applied in order to every key
RENAMES = (
    (".blocks.", ".resblocks."),
    (".attn.in_proj.weight", ".attn.in_proj_weight"),
    (".attn.in_proj.bias", ".attn.in_proj_bias"),
    (".mlp.fc1.", ".mlp.c_fc."),
    (".mlp.fc2.", ".mlp.c_proj."),
)
# OpenCLIP options whose non-default values the towers here cannot express
VISION_DEFAULTS = {
    "ls_init_value": None, "attentional_pool": False, "no_ln_pre": False, "pos_embed_type": "learnable",
    "final_ln_after_pool": False, "pool_type": "tok", "timm_model_name": None, "block_type": None,
    "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False, "scale_attn_inner": False,
    "scale_attn": False, "scale_fc": False, "act_kwargs": None, "norm_kwargs": None, "output_tokens": False,
}  # fmt: skip
TEXT_DEFAULTS = {
    "ls_init_value": None, "embed_cls": False, "no_causal_mask": False, "final_ln_after_pool": False,
    "proj_bias": False, "proj_type": "linear", "hf_model_name": None, "block_type": None, "qk_norm": False,
    "scaled_cosine_attn": False, "scale_heads": False, "scale_attn_inner": False, "scale_attn": False,
    "scale_fc": False, "act_kwargs": None, "norm_kwargs": None, "pad_id": 0, "output_tokens": False,
}  # fmt: skip
IGNORED = {"patch_dropout", "tokenizer_kwargs", "tokenizer_mode", "hf_tokenizer_name", "eos_id", "pool_type"}


class InteropError(ValueError):
    """An export or import that cannot be done; the message says why and what to do."""


def to_openclip_key(name: str) -> str:
    for here, there in RENAMES:
        name = name.replace(here, there)
    if name.startswith("text."):
        name = name.removeprefix("text.")
    return name.removeprefix("objective.")


def from_openclip_key(name: str) -> str:
    for here, there in RENAMES:
        name = name.replace(there, here)
    if name in ("logit_scale", "logit_bias"):
        return f"objective.{name}"
    return name if name.startswith("visual.") else f"text.{name}"


# ---------------------------------------------------------------- configs
def openclip_model_config(config: ModelConfig, objective: str, eos_id: int, tokenizer_dir: str) -> dict:
    """The OpenCLIP ``model_cfg`` of a two-tower ViT + CLIP-text model trained here."""
    vision, text = config.vision, config.text
    cfg: dict[str, Any] = {
        "embed_dim": config.embed_dim,
        "quick_gelu": config.quick_gelu,
        "vision_cfg": {
            "image_size": vision.image_size, "layers": vision.layers, "width": vision.width,
            "patch_size": vision.patch_size, "head_width": vision.width // vision.heads,
            "mlp_ratio": vision.mlp_ratio,
        },
        "text_cfg": {
            "context_length": text.context_length, "vocab_size": text.vocab_size, "width": text.width,
            "heads": text.heads, "layers": text.layers, "mlp_ratio": text.mlp_ratio, "pool_type": "eos",
            "eos_id": eos_id, "pad_id": 0, "hf_tokenizer_name": tokenizer_dir,
        },
    }  # fmt: skip
    if objective == "siglip":
        cfg["init_logit_scale"], cfg["init_logit_bias"] = math.log(10), -10.0
    return cfg


def _refuse_unsupported(section: dict, defaults: dict, where: str, known: set[str]) -> None:
    for key, value in section.items():
        if key in defaults and value != defaults[key] and not (value in (None, False) and not defaults[key]):
            raise InteropError(
                f"OpenCLIP {where}.{key}={value!r} has no counterpart in the towers here "
                "(ViT with class-token pooling, causal CLIP text transformer)"
            )
        if key not in defaults and key not in known and key not in IGNORED:
            raise InteropError(f"unknown OpenCLIP option {where}.{key}: this importer does not know it")


def model_config_from_openclip(model_cfg: dict, tokenizer: CaptionTokenizer, name: str) -> ModelConfig:
    """This project's ModelConfig for an OpenCLIP ``model_cfg``; InteropError when it cannot be expressed."""
    vision, text = dict(model_cfg.get("vision_cfg", {})), dict(model_cfg.get("text_cfg", {}))
    _refuse_unsupported(
        vision,
        VISION_DEFAULTS,
        "vision_cfg",
        {"image_size", "layers", "width", "patch_size", "head_width", "mlp_ratio"},
    )
    _refuse_unsupported(
        text,
        TEXT_DEFAULTS,
        "text_cfg",
        {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"},
    )
    if model_cfg.get("custom_text") or "multimodal_cfg" in model_cfg:
        raise InteropError("OpenCLIP custom-text and CoCa models have no counterpart here")
    if not isinstance(vision.get("layers", 12), int) or not isinstance(vision.get("image_size", 224), int):
        raise InteropError(
            "only square ViT image towers import (ResNet layer lists and image size pairs do not)"
        )
    pool = text.get("pool_type", "argmax")
    if pool == "eos" and text.get("eos_id", 2) != tokenizer.eos_id:
        raise InteropError(
            f"text_cfg.eos_id {text.get('eos_id', 2)} is not the tokenizer's end of text {tokenizer.eos_id}"
        )
    if pool == "argmax" and tokenizer.eos_id != tokenizer.vocab_size - 1:
        raise InteropError(
            "argmax pooling needs the end-of-text token to be the highest id, as in OpenAI's BPE"
        )
    if pool not in ("eos", "argmax"):
        raise InteropError(f"text_cfg.pool_type {pool!r}: only end-of-text pooling (eos, argmax) imports")
    width = vision.get("width", 768)
    vocab = text.get("vocab_size", 49408)
    if vocab != tokenizer.vocab_size:
        raise InteropError(f"text_cfg.vocab_size {vocab} differs from the tokenizer's {tokenizer.vocab_size}")
    return ModelConfig(
        name=name,
        vision=VisionConfig(
            kind="vit", image_size=vision.get("image_size", 224), patch_size=vision.get("patch_size", 16),
            width=width, layers=vision.get("layers", 12), heads=width // vision.get("head_width", 64),
            mlp_ratio=float(vision.get("mlp_ratio", 4.0)),
        ),
        text=TextConfig(
            kind="clip", vocab_size=vocab, context_length=text.get("context_length", 77),
            width=text.get("width", 512), layers=text.get("layers", 12), heads=text.get("heads", 8),
            mlp_ratio=float(text.get("mlp_ratio", 4.0)), eos_id=tokenizer.eos_id,
        ),
        embed_dim=model_cfg.get("embed_dim", 512),
        quick_gelu=bool(model_cfg.get("quick_gelu", False)),
    )  # fmt: skip


# ---------------------------------------------------------------- export
def _tokenizer_files(directory: Path, tokenizer: CaptionTokenizer) -> None:
    """tokenizer.json and the two small files transformers' AutoTokenizer reads next to it."""
    (directory / "tokenizer.json").write_text(tokenizer.tokenizer_json, encoding="utf-8")
    inner = tokenizer.tokenizer
    specials = {
        "bos_token": inner.id_to_token(tokenizer.cls_id),
        "eos_token": inner.id_to_token(tokenizer.eos_id),
        "pad_token": inner.id_to_token(0),
    }
    for role, token in (
        ("unk_token", "[UNK]"),
        ("cls_token", "[CLS]"),
        ("sep_token", "[SEP]"),
        ("mask_token", "[MASK]"),
    ):
        if inner.token_to_id(token) is not None:
            specials[role] = token
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": tokenizer.context_length,
        **specials,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (directory / "special_tokens_map.json").write_text(json.dumps(specials, indent=1), encoding="utf-8")


def export_openclip(
    checkpoint: str | Path, out_dir: str | Path, name: str | None = None, use_ema: bool = False
) -> Path:
    """Writes an OpenCLIP model directory for a CLIP/SigLIP checkpoint trained here; returns it."""
    found = find_checkpoint(Path(checkpoint), str(checkpoint))
    state = load_checkpoint(found)
    objective = state["config"]["objective"]["name"]
    config = model_config_from_dict(state["model_config"])
    if (
        objective not in EXPORTABLE
        or config.text is None
        or config.text.kind != "clip"
        or config.vision.kind != "vit"
    ):
        raise InteropError(
            f"{found}: only CLIP/SigLIP models with a ViT and a CLIP text tower have an OpenCLIP counterpart "
            f"(this one: {objective}, {config.vision.kind} + {config.text.kind if config.text else 'no text'})"
        )
    weights = state["model"]
    if use_ema:
        if state.get("ema") is None:
            raise CheckpointError(f"{found} has no EMA weights: it was trained without optim.ema_decay")
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or config.name
    tokenizer = CaptionTokenizer(state["tokenizer_json"], config.text.context_length)
    eos_id = config.text.eos_id if config.text.eos_id is not None else tokenizer.eos_id
    model_cfg = openclip_model_config(config, objective, eos_id, str(out.resolve()))
    exported = {to_openclip_key(key): value for key, value in weights.items()}
    exported.update({to_openclip_key(f"objective.{k}"): v for k, v in state["objective"].items()})
    torch.save(exported, out / WEIGHTS)
    preprocess = {
        "size": config.vision.image_size, "mode": "RGB", "mean": list(CLIP_MEAN), "std": list(CLIP_STD),
        "interpolation": "bicubic", "resize_mode": "shortest",
    }  # fmt: skip
    (out / OPENCLIP_CONFIG).write_text(
        json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}, indent=1), encoding="utf-8"
    )
    (out / f"{name}.json").write_text(json.dumps(model_cfg, indent=1), encoding="utf-8")
    _tokenizer_files(out, tokenizer)
    return out


# ---------------------------------------------------------------- import
@dataclass
class ImportedModel:
    """An OpenCLIP model mapped onto this project's towers, ready to initialise training."""

    config: ModelConfig
    model_state: dict[str, torch.Tensor]
    objective_state: dict[str, torch.Tensor]
    tokenizer_json: str
    source: str

    def load_into(self, model: nn.Module, objective: nn.Module) -> None:
        """Copies the weights in (strictly) and the logit scale/bias into the objective where it has one."""
        try:
            model.load_state_dict(self.model_state, strict=True)
        except RuntimeError as error:
            raise InteropError(
                f"{self.source} does not fit the towers here: {str(error).splitlines()[0]}"
            ) from error
        with torch.no_grad():
            scale = self.objective_state.get("logit_scale")
            if scale is not None and hasattr(objective, "logit_scale"):
                objective.logit_scale.copy_(scale.reshape(()))
            elif scale is not None and hasattr(objective, "temperature"):  # ALIGN divides by a temperature
                objective.temperature.copy_(torch.exp(-scale.reshape(())))
            bias = self.objective_state.get("logit_bias")
            if bias is not None and hasattr(objective, "logit_bias"):
                objective.logit_bias.copy_(bias.reshape(()))


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    path = next((directory / n for n in WEIGHT_NAMES if (directory / n).is_file()), None)
    if path is None:
        hint = (
            " (safetensors files: convert with safetensors.torch.load_file + torch.save)"
            if list(directory.glob("*.safetensors"))
            else ""
        )
        raise InteropError(f"{directory} holds no OpenCLIP weights ({', '.join(WEIGHT_NAMES)}){hint}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return {key.removeprefix("module."): value for key, value in state.items()}


def _read_tokenizer(directory: Path, text_cfg: dict) -> str:
    if text_cfg.get("hf_tokenizer_name"):
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise InteropError(f"{directory}: the config names an HF tokenizer but tokenizer.json is missing")
        return path.read_text(encoding="utf-8")
    bpe = directory / VOCAB_FILE
    if not bpe.is_file():
        raise InteropError(
            f"{directory}: this model uses OpenAI's BPE tokenizer; copy {VOCAB_FILE} (it ships inside the "
            "open_clip package, open_clip/bpe_simple_vocab_16e6.txt.gz) into the directory"
        )
    return clip_bpe_tokenizer(bpe).to_str()


def import_openclip(directory: str | Path) -> ImportedModel:
    """Reads an OpenCLIP model directory; raises InteropError when it cannot be mapped exactly."""
    directory = Path(directory)
    config_path = directory / OPENCLIP_CONFIG
    if not config_path.is_file():
        raise InteropError(f"{directory} has no {OPENCLIP_CONFIG}: pass an OpenCLIP model directory")
    raw = json.loads(config_path.read_text(encoding="utf-8"))
    model_cfg = raw.get("model_cfg", raw)
    text_cfg = model_cfg.get("text_cfg", {})
    tokenizer_json = _read_tokenizer(directory, text_cfg)
    tokenizer = CaptionTokenizer(tokenizer_json, text_cfg.get("context_length", 77))
    config = model_config_from_openclip(model_cfg, tokenizer, f"openclip:{directory.name}")
    state = _read_weights(directory)
    mapped = {from_openclip_key(key): value for key, value in state.items() if key != "attn_mask"}
    objective = {k.removeprefix("objective."): v for k, v in mapped.items() if k.startswith("objective.")}
    model_state = {k: v for k, v in mapped.items() if not k.startswith("objective.")}
    return ImportedModel(config, model_state, objective, tokenizer_json, str(directory))
