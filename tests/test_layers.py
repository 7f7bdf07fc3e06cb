"""The layering the code keeps (ARCHITECTURE.md, "Layers"), checked on every import statement.

- ``filters/``: pure rules; imports neither Beam nor torch, nor any other layer of the project.
- ``contract/``: the dataset's files and fields; imports nothing heavy and no other layer.
- ``pipelines/`` (Beam) and ``trainer/`` (torch) never import each other, nor the applications.
- Only the applications (``demo/``, ``benchmarks/``, ``deploy/``) and the tests import both.

Imports inside functions count too: a lazy import is still a dependency of the layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"filters", "contract", "pipelines", "trainer", "demo", "testing", "benchmarks", "deploy", "tests"}
APPLICATIONS = {"demo", "benchmarks", "deploy", "tests"}
# What each library layer may import from the project (itself included).
ALLOWED = {
    "filters": {"filters", "contract"},
    "contract": {"contract"},
    "pipelines": {"pipelines", "filters", "contract"},
    "trainer": {"trainer", "filters", "contract"},
    "testing": {"testing"},
}
HEAVY = {"filters": {"apache_beam", "torch"}, "contract": {"apache_beam", "torch", "numpy", "PIL"}}


def imported_roots(path: Path, package: str | None = None) -> set[str]:
    """The top-level names a file imports (relative imports resolve to the file's own ``package``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                roots.add(package or path.relative_to(ROOT).parts[0])
            elif node.module:
                roots.add(node.module.split(".")[0])
    return roots


def layer_files(layer: str) -> list[Path]:
    return sorted(path for path in (ROOT / layer).rglob("*.py") if ".venv" not in path.parts)


def test_every_layer_has_files():
    for layer in ALLOWED:
        assert layer_files(layer), f"{layer}/ has no Python files: the layering test would check nothing"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_library_layers_import_only_what_they_may(layer):
    wrong = {}
    for path in layer_files(layer):
        roots = imported_roots(path)
        bad = (roots & PROJECT) - ALLOWED[layer] | (roots & HEAVY.get(layer, set()))
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert not wrong, f"{layer}/ imports outside its layer: {wrong}"


def test_only_applications_import_both_beam_and_torch_layers():
    imports: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        top = path.relative_to(ROOT).parts
        if len(top) < 2 or top[0].startswith(".") or top[0] in {"build"}:
            continue
        imports.setdefault(top[0], set()).update(imported_roots(path))
    both = {top for top, roots in imports.items() if {"pipelines", "trainer"} <= roots}
    assert "demo" in both, "the demo uses both layers: the check is not looking at the right files"
    assert both <= APPLICATIONS, f"only applications may import both pipelines/ and trainer/: {both}"


def test_the_check_sees_a_violation(tmp_path):
    """The parser finds lazy and relative imports (so the tests above can fail)."""
    sample = tmp_path / "probe.py"
    sample.write_text("def f():\n    import torch\n    from . import text\n", encoding="utf-8")
    assert imported_roots(sample, package="filters") == {"torch", "filters"}
