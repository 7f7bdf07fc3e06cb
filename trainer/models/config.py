"""Typed model configurations, the named presets and the loader for preset names or JSON/YAML files.

`VisionConfig` is flat: ViT fields (patch_size, width, layers, heads, mlp_ratio) are read when
kind == "vit", EfficientNet fields (width_mult, depth_mult, dropout, drop_path_rate, bn_momentum)
when kind == "efficientnet". `dataclasses.asdict(cfg)` round-trips through `model_config_from_dict`.

Preset sources:
- "vit-b-16-*": ViT-B/16 at 224 px (Dosovitskiy et al. 2021, Table 1: width 768, 12 layers, 12 heads,
  86M parameters). "vit-b-16-clip" pairs it with CLIP's text transformer (Radford et al. 2021, §2.4
  and Table 20: width 512, 12 layers, 8 heads, 49,408-token BPE vocabulary as released, 77 tokens, embedding 512).
- "efficientnet-b3-align": EfficientNet-B3 (Tan & Le 2019: width 1.2, depth 1.4, 300 px, dropout 0.3,
  12M parameters with its 1000-way head) and a BERT-base-shaped text tower (768 wide, 12 layers,
  12 heads, WordPiece vocabulary of 30,522 until the dataset's tokenizer sets it). Embedding 640 is
  ALIGN's: the embedding size of its ablation baseline (Jia et al. 2021, §6), also used by Kakao
  Brain's open ALIGN-base. ALIGN's headline model is EfficientNet-L2 + BERT-Large; B3 is the small
  end of its ablation grid. The image tower gets a linear projection 1536 -> 640.
  Context 64 tokens: curated alt-texts are 3-20 unigrams, so 64 wordpieces rarely truncate.
- "vit-b-16-catlip": CatLIP's ViT-B/16 image tower with a classifier over the synset vocabulary
  (Mehta et al. 2024); `num_classes` is left None and set from `vocabulary.json` at run time.
- "vit-b-16-siglip": ViT-B/16 with SigLIP's B-sized text tower (Zhai et al. 2023: width 768,
  12 layers, 12 heads, 32k vocabulary, 64 tokens), embedding 768. Image pooling is the class token
  here, not SigLIP's attention-pooling head.
- "tiny-*": 1-3M-parameter versions of the same towers at 64 px for CPU tests and smoke runs.
  "tiny-align" uses PyTorch's default BatchNorm momentum 0.1 instead of TF's 0.01 (decay 0.99, the
  EfficientNet default): at 0.01 the running statistics of a few-hundred-step run still carry the
  untrained first steps, and eval-mode features collapse to chance although the training loss is low.

`vocab_size` in every preset is a placeholder: the loop overrides it with the size of the dataset's
`tokenizer.json`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer.typed_config import ConfigError, from_dict

VISION_KINDS = ("vit", "efficientnet")
TEXT_KINDS = ("clip", "bert")


@dataclass
class VisionConfig:
    """Image tower. ViT fields apply to kind "vit", EfficientNet fields to kind "efficientnet"."""

    kind: str = "vit"
    image_size: int = 224
    # ViT
    patch_size: int = 16
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    # EfficientNet (compound scaling of the B0 stage table; Tan & Le 2019, Table 1)
    width_mult: float = 1.0
    depth_mult: float = 1.0
    dropout: float = 0.2
    drop_path_rate: float = 0.2
    # PyTorch BatchNorm momentum; 0.01 is TF's decay 0.99 that EfficientNet was trained with
    bn_momentum: float = 0.01

    def __post_init__(self) -> None:
        _require(self.kind in VISION_KINDS, f"vision.kind must be one of {VISION_KINDS}, got {self.kind!r}")
        _require(self.image_size > 0, f"vision.image_size must be positive, got {self.image_size}")
        if self.kind == "vit":
            _require(
                self.image_size % self.patch_size == 0,
                f"vision.image_size {self.image_size} is not a multiple of patch_size {self.patch_size}",
            )
            _require(
                self.width % self.heads == 0,
                f"vision.width {self.width} is not divisible by vision.heads {self.heads}",
            )
        else:
            _require(self.width_mult > 0 and self.depth_mult > 0, "vision.width_mult/depth_mult must be > 0")
            _require(0.0 <= self.dropout < 1.0, f"vision.dropout must be in [0, 1), got {self.dropout}")
            _require(
                0.0 <= self.drop_path_rate < 1.0,
                f"vision.drop_path_rate must be in [0, 1), got {self.drop_path_rate}",
            )
            _require(
                0.0 < self.bn_momentum <= 1.0, f"vision.bn_momentum must be in (0, 1], got {self.bn_momentum}"
            )


@dataclass
class TextConfig:
    """Text tower: "clip" = causal transformer pooled at end of text; "bert" = bidirectional, [CLS]."""

    kind: str = "clip"
    vocab_size: int = 49408
    context_length: int = 77
    width: int = 512
    layers: int = 12
    heads: int = 8
    mlp_ratio: float = 4.0
    # CLIP tower: pool at the first occurrence of this token (the tokenizer's end of text, set from
    # it at run time: [SEP] here, <|endoftext|> for OpenAI's BPE); None = the last non-pad position
    eos_id: int | None = None

    def __post_init__(self) -> None:
        _require(self.kind in TEXT_KINDS, f"text.kind must be one of {TEXT_KINDS}, got {self.kind!r}")
        _require(self.vocab_size > 0, f"text.vocab_size must be positive, got {self.vocab_size}")
        _require(self.context_length > 0, f"text.context_length must be positive, got {self.context_length}")
        _require(
            self.width % self.heads == 0,
            f"text.width {self.width} is not divisible by text.heads {self.heads}",
        )


@dataclass
class ModelConfig:
    """A whole model. `text=None` means an image-only CatLIP classifier over `num_classes` synsets.

    embed_dim: size of the L2-normalised features. For CatLIP it is also the classifier's input size;
    when it equals the image tower's feature width no projection is added (the paper's setting).
    num_classes: CatLIP head size, set from the synset vocabulary at run time (None until then).
    quick_gelu: transformer MLPs use QuickGELU instead of GELU (OpenAI's released CLIP weights).
    """

    name: str
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig | None = None
    embed_dim: int = 512
    num_classes: int | None = None
    grad_checkpointing: bool = False
    # OpenAI CLIP's x * sigmoid(1.702 x) in the transformer MLPs (its released weights need it)
    quick_gelu: bool = False

    def __post_init__(self) -> None:
        _require(self.embed_dim > 0, f"embed_dim must be positive, got {self.embed_dim}")
        _require(
            self.num_classes is None or self.num_classes > 0,
            f"num_classes must be positive or None, got {self.num_classes}",
        )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


_TINY_VIT = VisionConfig(kind="vit", image_size=64, patch_size=8, width=128, layers=4, heads=4)
_TINY_CLIP_TEXT = TextConfig(kind="clip", vocab_size=4096, context_length=77, width=128, layers=4, heads=4)
_VIT_B_16 = VisionConfig(kind="vit", image_size=224, patch_size=16, width=768, layers=12, heads=12)

PRESETS: dict[str, ModelConfig] = {
    "tiny-clip": ModelConfig("tiny-clip", _TINY_VIT, _TINY_CLIP_TEXT, embed_dim=128),
    "tiny-align": ModelConfig(
        "tiny-align",
        VisionConfig(
            kind="efficientnet", image_size=64, width_mult=0.25, depth_mult=0.25, dropout=0.2, bn_momentum=0.1
        ),
        TextConfig(kind="bert", vocab_size=4096, context_length=64, width=128, layers=4, heads=4),
        embed_dim=128,
    ),
    "tiny-catlip": ModelConfig("tiny-catlip", _TINY_VIT, None, embed_dim=128),
    "tiny-siglip": ModelConfig("tiny-siglip", _TINY_VIT, _TINY_CLIP_TEXT, embed_dim=128),
    "vit-b-16-clip": ModelConfig(
        "vit-b-16-clip",
        _VIT_B_16,
        TextConfig(kind="clip", vocab_size=49408, context_length=77, width=512, layers=12, heads=8),
        embed_dim=512,
    ),
    "efficientnet-b3-align": ModelConfig(
        "efficientnet-b3-align",
        VisionConfig(
            kind="efficientnet",
            image_size=300,
            width_mult=1.2,
            depth_mult=1.4,
            dropout=0.3,
            drop_path_rate=0.2,
        ),
        TextConfig(kind="bert", vocab_size=30522, context_length=64, width=768, layers=12, heads=12),
        embed_dim=640,
    ),
    "vit-b-16-catlip": ModelConfig("vit-b-16-catlip", _VIT_B_16, None, embed_dim=768),
    "vit-b-16-siglip": ModelConfig(
        "vit-b-16-siglip",
        _VIT_B_16,
        TextConfig(kind="clip", vocab_size=32000, context_length=64, width=768, layers=12, heads=12),
        embed_dim=768,
    ),
}
# The objective each preset is built for: the default of ``objective.name`` when a run names a preset.
PRESET_OBJECTIVES: dict[str, str] = {
    "tiny-clip": "clip",
    "tiny-align": "align",
    "tiny-catlip": "catlip",
    "tiny-siglip": "siglip",
    "vit-b-16-clip": "clip",
    "efficientnet-b3-align": "align",
    "vit-b-16-catlip": "catlip",
    "vit-b-16-siglip": "siglip",
}


def load_model_config(path_or_preset: str, **overrides: Any) -> ModelConfig:
    """Return a fresh ModelConfig from a preset name or a .json/.yaml/.yml file, with overrides applied.

    Overrides are top-level ModelConfig fields; a dict given for "vision" or "text" updates only the
    keys it names (`load_model_config("tiny-clip", text={"vocab_size": 30000})`), a VisionConfig /
    TextConfig instance replaces the section, and `text=None` drops the text tower. Unknown keys,
    wrong types and missing files raise ConfigError (a ValueError) with a one-line reason.
    """
    if path_or_preset in PRESETS:
        base = dataclasses.asdict(PRESETS[path_or_preset])
    else:
        base = _read_config_file(path_or_preset)
    merged = _merge(base, overrides)
    return model_config_from_dict(merged)


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Build a ModelConfig from nested plain dicts (the inverse of `dataclasses.asdict`)."""
    return from_dict(ModelConfig, data, "model")


def _read_config_file(path_str: str) -> dict[str, Any]:
    path = Path(path_str)
    if not path.is_file():
        raise ConfigError(
            f"{path_str!r} is neither a model preset ({', '.join(sorted(PRESETS))}) nor an existing "
            "JSON/YAML file"
        )
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ConfigError(f"model config {path} must end in .json, .yaml or .yml")
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot parse model config {path}: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(
            f"model config {path} must hold a mapping at the top level, got {type(data).__name__}"
        )
    return data


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            merged[key] = dataclasses.asdict(value)  # a whole VisionConfig/TextConfig replaces the section
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged
