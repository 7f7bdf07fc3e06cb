"""deploy/README.md: every launch and training command it shows is accepted as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from deploy import launch

README = Path(__file__).resolve().parent.parent / "deploy" / "README.md"


def shell_lines() -> list[list[str]]:
    """The commands in the README's bash blocks, as argv lists (env assignments and `cd … &&` dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)
    commands = []
    for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        for part in line.split("&&"):
            words = shlex.split(part)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words.pop(0)
            if words:
                commands.append(words)
    return commands


def after(words: list[str], marker: str) -> list[str]:
    return words[words.index(marker) + 1 :]


LAUNCHES = [w for w in shell_lines() if w[:2] == ["python", "deploy/launch.py"]]
TRAININGS = [w for w in shell_lines() if any(p.endswith(("train_torchrun.sh", "train.sbatch")) for p in w)]


def test_readme_shows_every_runner_and_launcher():
    assert {w[2] for w in LAUNCHES} == {"local", "dataflow", "flink", "spark"}
    launchers = {Path(p).name for w in TRAININGS for p in w if p.endswith((".sh", ".sbatch"))}
    assert launchers == {"train_torchrun.sh", "train.sbatch"}


@pytest.mark.parametrize("words", LAUNCHES, ids=lambda w: w[2])
def test_launch_commands_pass_the_launcher(words, capsys):
    own = words[2 : words.index("--")] if "--" in words else words[2:]
    assert launch.main([*own, "--dry-run", *words[2 + len(own) :]]) == 0
    printed = shlex.split(capsys.readouterr().out.strip())
    assert printed[1:3] == ["-m", "pipelines.curate"]


@pytest.mark.parametrize("words", TRAININGS, ids=lambda w: Path(w[0]).name)
def test_training_commands_are_valid_trainer_options(words):
    from trainer.config import validate
    from trainer.train import config_from_args, parser

    script = next(p for p in words if p.endswith((".sh", ".sbatch")))
    cfg = config_from_args(parser().parse_args(after(words, script)))
    validate(cfg)
    assert cfg.data.paths and cfg.checkpoint.resume == "latest"
