"""deploy/docker: the image definitions, parsed (no Docker engine here), agree with the project's pins.

A small Dockerfile parser (instructions with their arguments, line continuations, comments, ARG
defaults in FROM) lets the tests check what a build would do: the Beam base tag equals the
apache-beam pin, WordNet is installed at build time, the trainer never pip-installs torch.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "deploy" / "docker"


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; continuation lines joined, comment lines dropped, ARGs expanded in FROM."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, also inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, args = (pending + line).partition(" ")
        instructions.append((instruction.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, "the file ends inside a continued instruction"
    defaults: dict[str, str] = {}
    resolved = []
    for instruction, args in instructions:
        if instruction == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name] = value.strip('"')
        if instruction == "FROM":
            args = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m.group(1) or m.group(2)], args)
        resolved.append((instruction, args))
    return resolved


def runs(instructions: list[tuple[str, str]]) -> list[str]:
    return [args for instruction, args in instructions if instruction == "RUN"]


def env_of(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for instruction, args in instructions:
        if instruction == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(args))
    return env


def pin(package: str, text: str) -> str:
    match = re.search(rf"^\s*\"?{re.escape(package)}==([\w.]+)", text, re.MULTILINE)
    assert match, f"{package} is not pinned"
    return match.group(1)


@pytest.fixture(scope="module")
def worker() -> list[tuple[str, str]]:
    return parse_dockerfile((DOCKER / "beam-worker.Dockerfile").read_text())


@pytest.fixture(scope="module")
def trainer() -> list[tuple[str, str]]:
    return parse_dockerfile((DOCKER / "trainer.Dockerfile").read_text())


def test_parser_joins_continuations_and_expands_from():
    parsed = parse_dockerfile(
        'ARG B=img:1\nFROM ${B}\n# note\nRUN a \\\n  # inner comment\n  && b\nENV X=1 \\\n  Y="2 3"\n'
    )
    assert parsed == [("ARG", "B=img:1"), ("FROM", "img:1"), ("RUN", "a && b"), ("ENV", 'X=1 Y="2 3"')]
    assert env_of(parsed) == {"X": "1", "Y": "2 3"}


def test_worker_base_is_the_pinned_beam_sdk_for_this_python(worker):
    setup_py, constraints = (ROOT / "setup.py").read_text(), (ROOT / "constraints.txt").read_text()
    beam = pin("apache-beam", setup_py)
    assert pin("apache-beam", constraints) == beam
    base = [args for instruction, args in worker if instruction == "FROM"]
    assert len(base) == 1
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    # Workers unpickle what the launcher pickled: same Beam, same Python minor version.
    assert base[0] == f"apache/beam_python{python}_sdk:{beam}"


def test_worker_bakes_in_wordnet_and_the_pinned_project(worker):
    assert env_of(worker)["NO_ALBUMENTATIONS_UPDATE"] == "1"
    steps = runs(worker)
    apt = next(step for step in steps if "apt-get install" in step)
    assert {"wordnet-base", "wordnet-sense-index"} <= set(apt.split())
    install = next(i for i, step in enumerate(steps) if "pip install" in step)
    assert "-c constraints.txt" in steps[install]
    # WordNet goes into the image at build time (after the project is installed), then is checked.
    assert "python -m filters.wordnet_data install" in steps[install]
    assert steps[install].index("wordnet_data install") < steps[install].index("wordnet_data check")
    assert steps.index(apt) < install
    entry = [args for instruction, args in worker if instruction in ("ENTRYPOINT", "CMD")]
    assert entry == []  # the SDK harness's boot entrypoint must stay


def test_trainer_keeps_the_base_cuda_torch(trainer):
    base = next(args for instruction, args in trainer if instruction == "FROM")
    assert re.fullmatch(r"pytorch/pytorch:[\d.]+-cuda[\d.]+-cudnn\d+-runtime", base)
    assert env_of(trainer)["NO_ALBUMENTATIONS_UPDATE"] == "1"
    steps = runs(trainer)
    for step in steps:
        for command in re.split(r"&&|;", step):
            words = command.split()
            if words[:2] == ["pip", "install"]:
                requirements = [w for w in words[2:] if not w.startswith("-") and not w.endswith(".txt")]
                assert not any(re.match(r"torch\b", w.strip("\"'")) for w in requirements), command
                assert "/tmp/torch-from-base.txt" in words, "torch must be pinned to the base image's build"
    install = next(step for step in steps if "pip install" in step)
    assert install.index("torch-from-base.txt") < install.index("pip install")
    assert "torch.version.cuda" in install
    assert "python -m filters.wordnet_data install" in install
    # setup.py must keep torch out of install_requires, or pip would resolve it over the base's build.
    assert not re.search(r"[\"']torch[=<>\"']", (ROOT / "setup.py").read_text())


def test_trainer_fsspec_backends_share_one_release(trainer):
    cloud = next(
        args for instruction, args in trainer if instruction == "ARG" and args.startswith("CLOUD_FS=")
    )
    pins = dict(word.split("==") for word in cloud.partition("=")[2].strip('"').split())
    assert set(pins) == {"fsspec", "gcsfs", "s3fs"}
    assert len(set(pins.values())) == 1


@pytest.mark.parametrize("name", ["beam-worker.Dockerfile", "trainer.Dockerfile"])
def test_every_copied_path_exists_and_is_not_ignored(name):
    instructions = parse_dockerfile((DOCKER / name).read_text())
    ignored = [
        line.strip()
        for line in (DOCKER / f"{name}.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        word for instruction, args in instructions if instruction == "COPY" for word in args.split()[:-1]
    ]
    assert {"setup.py", "constraints.txt", "filters/", "pipelines/", "trainer/"} <= set(copied)
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source.rstrip("/"), pattern) for pattern in ignored), source
    assert ".venv" in ignored and ".git" in ignored


@pytest.mark.parametrize("name", ["beam-worker.Dockerfile", "trainer.Dockerfile"])
def test_modules_the_build_runs_exist(name):
    for step in runs(parse_dockerfile((DOCKER / name).read_text())):
        for module in re.findall(r"python -m ([\w.]+)", step):
            assert importlib.util.find_spec(module), module
        for imports in re.findall(r'python -c "import ([\w, ]+)', step):
            for module in imports.split(","):
                if module.strip() not in ("gcsfs", "s3fs"):  # installed only in the image (CLOUD_FS)
                    assert importlib.util.find_spec(module.strip()), module
