"""examples/run.yaml, the training config the README ships, loads as a valid TrainConfig."""

from __future__ import annotations

from pathlib import Path

from trainer.config import load_train_config, validate

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "run.yaml"


def test_the_example_run_config_loads_and_validates() -> None:
    cfg = load_train_config(EXAMPLE)
    validate(cfg)
    assert cfg.data.paths == ["out/demo/dataset"] and cfg.model.preset == "tiny-clip"
    assert cfg.objective.name == "clip" and cfg.run.steps == 1000
    assert load_train_config(EXAMPLE, ["run.steps=10"]).run.steps == 10
