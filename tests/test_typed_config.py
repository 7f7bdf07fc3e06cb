"""The one typed-config builder behind the run config and the model config."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from trainer.typed_config import ConfigError, from_dict


@dataclass
class Inner:
    size: int = 1
    scale: tuple[float, float] = (0.9, 1.0)


@dataclass
class Outer:
    name: str
    lr: float = 1e-3
    inner: Inner = field(default_factory=Inner)
    optional: Inner | None = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


def test_builds_nested_dataclasses_and_coerces_yaml_values() -> None:
    cfg = from_dict(Outer, {"name": "x", "lr": "1e-3", "inner": {"scale": [0.5, 1]}, "tags": "a"}, "cfg")
    assert cfg == Outer("x", 1e-3, Inner(1, (0.5, 1.0)), None, ["a"])
    assert isinstance(cfg.inner.scale[1], float)
    assert from_dict(Outer, {"name": "x", "optional": {"size": 3}}, "cfg").optional == Inner(3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "depth": 3}, r"^unknown option cfg.depth \(known: name, lr, inner, optional, tags\)$"),
        ({"name": "x", "inner": {"size": "12"}}, r"^cfg.inner.size must be int, got '12'$"),
        ({"name": "x", "inner": {"size": 1.5}}, r"^cfg.inner.size must be an integer, got 1.5$"),
        ({"name": "x", "inner": {"scale": [1]}}, r"^cfg.inner.scale must have 2 values, got \[1\]$"),
        ({"name": "x", "optional": {"size": True}}, r"^cfg.optional.size must be int, got True$"),
        ({"name": "x", "lr": None}, r"^cfg.lr must not be null$"),
        ({"name": "x", "lr": -1}, r"^cfg: lr must be positive, got -1.0$"),
        ({"lr": 1}, r"^cfg: .*missing 1 required positional argument: 'name'$"),
        ({"name": "x", "inner": 3}, r"^cfg.inner must be a mapping, got 3$"),
    ],
)
def test_every_mistake_is_one_line_naming_the_option(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data, "cfg")


def test_every_preset_names_its_objective_and_the_cli_flags_arrive_typed():
    from trainer.models.config import PRESET_OBJECTIVES, PRESETS
    from trainer.objectives import OBJECTIVE_NAMES
    from trainer.train import config_from_args, parser

    assert set(PRESET_OBJECTIVES) == set(PRESETS) and set(PRESET_OBJECTIVES.values()) <= set(OBJECTIVE_NAMES)
    argv = ["--data", "d1", "--data", "d2", "--preset", "efficientnet-b3-align", "--lr", "2e-4", "--out", "r"]
    cfg = config_from_args(parser().parse_args([*argv, "--set", "optim.warmup_steps=7"]))
    assert cfg.objective.name == "align" and cfg.data.paths == ["d1", "d2"]
    assert cfg.optim.lr == 2e-4 and cfg.out_dir == "r" and cfg.optim.warmup_steps == 7
    # a flag's string is never re-read as YAML: "null" stays the out_dir's name
    assert config_from_args(parser().parse_args(["--out", "null"])).out_dir == "null"


def test_what_the_loop_asks_of_an_objective_is_on_its_class():
    from trainer.objectives import OBJECTIVE_NAMES, ObjectiveConfig, build_objective, objective_class

    assert {name: objective_class(name).needs_text for name in OBJECTIVE_NAMES} == {
        "clip": True, "align": True, "siglip": True, "catlip": False,
    }  # fmt: skip
    assert [name for name in OBJECTIVE_NAMES if objective_class(name).pairwise] == ["clip", "align", "siglip"]
    assert [name for name in OBJECTIVE_NAMES if objective_class(name).flips_images] == ["align"]
    for name in OBJECTIVE_NAMES:  # the registry and build_objective agree
        assert type(build_objective(ObjectiveConfig(name=name))) is objective_class(name)
