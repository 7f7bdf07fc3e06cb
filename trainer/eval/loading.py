"""A trained model back from a checkpoint, with the tokenizer and synset vocabulary it was trained with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from contract.vocabulary import ClassIndex
from trainer.checkpoint import CheckpointError, find_checkpoint, load_checkpoint
from trainer.data.text import CaptionTokenizer
from trainer.models import ModelConfig, build_model, model_config_from_dict


@dataclass
class TrainedModel:
    model: nn.Module
    config: ModelConfig
    objective: str
    tokenizer: CaptionTokenizer | None
    vocabulary: ClassIndex | None
    step: int
    train_config: dict

    @property
    def two_tower(self) -> bool:
        return self.config.text is not None


def load_trained(path: str | Path, use_ema: bool = False, device: str | torch.device = "cpu") -> TrainedModel:
    """The model of a checkpoint (a file, or a directory: its newest), in eval mode on ``device``."""
    found = find_checkpoint(Path(path), str(path))
    state = load_checkpoint(found, map_location="cpu")
    config = model_config_from_dict(state["model_config"])
    model = build_model(config)
    weights = state["model"]
    if use_ema:
        if state.get("ema") is None:
            raise CheckpointError(f"{found} has no EMA weights: it was trained without optim.ema_decay")
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    model.load_state_dict(weights)
    tokenizer = None
    if config.text is not None and state.get("tokenizer_json"):
        tokenizer = CaptionTokenizer(state["tokenizer_json"], config.text.context_length)
    vocabulary = state.get("vocabulary")
    return TrainedModel(
        model.to(device).eval(),
        config,
        state["config"]["objective"]["name"],
        tokenizer,
        ClassIndex.from_state(vocabulary) if vocabulary else None,
        int(state["step"]),
        state["config"],
    )
