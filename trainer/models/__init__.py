"""Model towers and `build_model`, the one entry point the training loop and evaluation call.

Two-tower models (CLIP / ALIGN / SigLIP; `cfg.text` set):
    forward(images: FloatTensor[B, 3, H, W], tokens: LongTensor[B, L] | None) -> dict with
    "image_features" and "text_features", both L2-normalised [B, embed_dim] ("text_features" is
    omitted when tokens is None); `encode_image(images)` and `encode_text(tokens)` return the same
    normalised features.
CatLIP model (`cfg.text is None`, `cfg.num_classes` set):
    forward(images, tokens=None) -> {"logits": [B, num_classes], "image_features": normalised [B, D]},
    `encode_image(images)`, and `model.classifier`, an nn.Linear(D, num_classes) (D = embed_dim) for
    Transfer Init.
Every model has `set_grad_checkpointing(enabled: bool)` (torch.utils.checkpoint over transformer and
MBConv blocks) and keeps its ModelConfig as `model.config`.

Tokens follow the dataset's tokenizer: `[CLS] ... [SEP]`, then [PAD] = 0. The CLIP text tower is
causal and pools at the last non-pad position; the BERT tower is bidirectional, masks pads out of
attention and pools [CLS] at position 0.
"""

from __future__ import annotations

from torch import nn

from trainer.models.config import (
    PRESETS,
    ModelConfig,
    TextConfig,
    VisionConfig,
    load_model_config,
    model_config_from_dict,
)
from trainer.models.efficientnet import EfficientNet
from trainer.models.heads import ImageClassifierModel, TwoTowerModel
from trainer.models.text import BertTextEncoder, CLIPTextTransformer
from trainer.models.vit import VisionTransformer

__all__ = [
    "PRESETS",
    "ImageClassifierModel",
    "ModelConfig",
    "TextConfig",
    "TwoTowerModel",
    "VisionConfig",
    "build_image_tower",
    "build_model",
    "build_text_tower",
    "load_model_config",
    "model_config_from_dict",
]


def build_image_tower(cfg: VisionConfig, output_dim: int | None, quick_gelu: bool = False) -> nn.Module:
    """The image tower alone; output_dim=None leaves off the projection (features of the tower's width)."""
    if cfg.kind == "vit":
        return VisionTransformer(
            cfg.image_size,
            cfg.patch_size,
            cfg.width,
            cfg.layers,
            cfg.heads,
            cfg.mlp_ratio,
            output_dim,
            quick_gelu,
        )
    return EfficientNet(
        cfg.width_mult, cfg.depth_mult, cfg.dropout, cfg.drop_path_rate, output_dim, cfg.bn_momentum
    )


def build_text_tower(cfg: TextConfig, output_dim: int, quick_gelu: bool = False) -> nn.Module:
    shape = (cfg.vocab_size, cfg.context_length, cfg.width, cfg.layers, cfg.heads, cfg.mlp_ratio, output_dim)
    if cfg.kind == "clip":
        return CLIPTextTransformer(*shape, eos_id=cfg.eos_id, quick_gelu=quick_gelu)
    return BertTextEncoder(*shape)


def build_model(cfg: ModelConfig) -> nn.Module:
    """A TwoTowerModel when cfg.text is set, else CatLIP's ImageClassifierModel (needs cfg.num_classes)."""
    if cfg.text is not None:
        model: nn.Module = TwoTowerModel(
            build_image_tower(cfg.vision, cfg.embed_dim, cfg.quick_gelu),
            build_text_tower(cfg.text, cfg.embed_dim, cfg.quick_gelu),
            cfg,
        )
    else:
        if cfg.num_classes is None:
            raise ValueError(
                f"model {cfg.name!r} has no text tower, so it is a CatLIP classifier and needs num_classes "
                "(set it to the number of kept synsets in the dataset's vocabulary.json)"
            )
        model = ImageClassifierModel(
            build_image_tower(cfg.vision, None, cfg.quick_gelu), cfg.embed_dim, cfg.num_classes, cfg
        )
    model.set_grad_checkpointing(cfg.grad_checkpointing)
    return model
