"""Round trips with the real open_clip package (3.3.0, in .venv-interop, which scripts/test.sh builds):

- export: a CLIP and a SigLIP checkpoint trained here → OpenCLIP directory → ``open_clip.add_model_config``
  + ``create_model_and_transforms(name, pretrained=path)`` (strict) and ``create_model("local-dir:…")``
  give the same image and text embeddings (max |Δ| ≤ 1e-5, fp32) and, through
  ``get_tokenizer("local-dir:…")``, the same token ids;
- import (``--init-from``): OpenCLIP's own ViT-B-16 (the vit-b-16-clip preset's counterpart) and a
  QuickGELU model, built by open_clip from their configs with random weights, map onto the towers here
  with the same embeddings and, through the converted BPE, the same token ids; training starts from one.

The OpenCLIP side runs as a subprocess (tests/openclip_side.py) in the other venv; tensors travel as
files. Without that venv the tests skip locally with the command that builds it; under CI they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.trainer_fixtures import make_dataset, torch_threads
from trainer.config import load_train_config
from trainer.data.text import CaptionTokenizer
from trainer.eval import load_trained
from trainer.interop.__main__ import main as export_main
from trainer.interop.openclip import InteropError, import_openclip
from trainer.loop import train
from trainer.models import PRESETS, build_model

ROOT = Path(__file__).resolve().parents[1]
SIDE = ROOT / "tests" / "openclip_side.py"
CAPTIONS = [
    "a red ball on a white background",
    "the Blue BOX!!  photo, 2 of 3",
    "café naïve: it's a tent; isn't it?",
    "a wheel " * 40,  # longer than the context: truncated with the end of text kept last
]
TOLERANCE = 1e-5


def openclip_python() -> str:
    found = os.environ.get("OPENCLIP_PYTHON") or str(ROOT / ".venv-interop" / "bin" / "python")
    if not Path(found).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{found} is missing: scripts/test.sh builds it with scripts/setup_interop_env.sh")
        pytest.skip("no OpenCLIP venv: run `bash scripts/setup_interop_env.sh` (scripts/test.sh does)")
    return found


def run_side(*args: str) -> dict:
    out = Path(args[-1])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [openclip_python(), str(SIDE), *args], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out, weights_only=True)


def save_inputs(path: Path, image_size: int, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    inputs = {"images": torch.randn(3, 3, image_size, image_size, generator=generator), "captions": CAPTIONS}
    torch.save(inputs, path)
    return inputs


def max_delta(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("interop") / "ds", 64, image_size=40)


def trained(dataset: Path, out: Path, objective: str, *extra: str) -> Path:
    cfg = load_train_config(
        None,
        [f"data.paths=[{dataset}]", "model.preset=tiny-clip", f"objective.name={objective}", f"out_dir={out}",
         "run.steps=2", "data.batch_size=8", "data.workers=0", "optim.warmup_steps=1", "logging.progress=false",
         "model.overrides={vision: {image_size: 32, patch_size: 8, width: 32, layers: 2, heads: 2},"
         " text: {width: 32, layers: 2, heads: 2, context_length: 16}, embed_dim: 24}", *extra],
    )  # fmt: skip
    return train(cfg).checkpoint


@pytest.mark.parametrize("objective", ["clip", "siglip"])
def test_export_loads_strictly_in_open_clip_with_the_same_embeddings(
    dataset: Path, tmp_path: Path, objective: str
) -> None:
    checkpoint = trained(dataset, tmp_path / "run", objective)
    name = f"exported-tiny-{objective}"
    assert export_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "oc"), "--name", name]) == 0
    inputs = save_inputs(tmp_path / "inputs.pt", 32)
    theirs = run_side(
        "load-export", str(tmp_path / "oc"), name, str(tmp_path / "inputs.pt"), str(tmp_path / "oc.pt")
    )
    ours = load_trained(checkpoint)
    tokens = ours.tokenizer(CAPTIONS)
    assert torch.equal(theirs["tokens"], tokens) and torch.equal(theirs["name_tokens"], tokens)
    with torch.no_grad():
        image, text = ours.model.encode_image(inputs["images"]), ours.model.encode_text(tokens)
    assert max_delta(theirs["image"], image) <= TOLERANCE
    assert max_delta(theirs["image_local_dir"], image) <= TOLERANCE
    assert max_delta(theirs["text"], text) <= TOLERANCE
    objective_state = torch.load(checkpoint, weights_only=True)["objective"]
    assert torch.equal(theirs["logit_scale"], objective_state["logit_scale"])
    if objective == "siglip":
        assert torch.equal(theirs["logit_bias"], objective_state["logit_bias"])
    else:
        assert theirs["logit_bias"] is None


def imported_embeddings(
    directory: Path, inputs: dict
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, object]:
    imported = import_openclip(directory)
    model = build_model(imported.config).eval()
    objective = torch.nn.Module()
    objective.logit_scale = torch.nn.Parameter(torch.zeros(()))
    imported.load_into(model, objective)
    tokens = CaptionTokenizer(imported.tokenizer_json, imported.config.text.context_length)(
        inputs["captions"]
    )
    with torch.no_grad():
        return tokens, model.encode_image(inputs["images"]), model.encode_text(tokens), imported


def test_openclip_vit_b_16_imports_onto_the_vit_b_16_clip_preset(tmp_path: Path) -> None:
    inputs = save_inputs(tmp_path / "inputs.pt", 224)
    theirs = run_side(
        "make-model", "ViT-B-16", str(tmp_path / "oc"), str(tmp_path / "inputs.pt"), str(tmp_path / "oc.pt")
    )
    tokens, image, text, imported = imported_embeddings(tmp_path / "oc", inputs)
    preset = PRESETS["vit-b-16-clip"]
    assert imported.config.vision == preset.vision and imported.config.embed_dim == preset.embed_dim
    shape = ("kind", "vocab_size", "context_length", "width", "layers", "heads", "mlp_ratio")
    assert all(getattr(imported.config.text, f) == getattr(preset.text, f) for f in shape)
    assert torch.equal(theirs["tokens"], tokens)  # OpenAI's BPE, converted (49407 = <|endoftext|>)
    assert (tokens == 49407).sum(1).tolist() == [1, 1, 1, 1] and tokens[3, -1] == 49407
    assert max_delta(theirs["image"], image) <= TOLERANCE
    assert max_delta(theirs["text"], text) <= TOLERANCE


def test_a_quickgelu_openclip_model_imports_and_training_starts_from_it(
    dataset: Path, tmp_path: Path
) -> None:
    config = {
        "embed_dim": 32, "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }  # fmt: skip
    (tmp_path / "tiny-quickgelu.json").write_text(json.dumps(config))
    inputs = save_inputs(tmp_path / "inputs.pt", 32)
    oc = tmp_path / "oc"
    theirs = run_side(
        "make-model",
        str(tmp_path / "tiny-quickgelu.json"),
        str(oc),
        str(tmp_path / "inputs.pt"),
        str(tmp_path / "oc.pt"),
    )
    tokens, image, text, imported = imported_embeddings(oc, inputs)
    assert imported.config.quick_gelu and torch.equal(theirs["tokens"], tokens)
    assert max_delta(theirs["image"], image) <= TOLERANCE and max_delta(theirs["text"], text) <= TOLERANCE
    checkpoint = trained(dataset, tmp_path / "run", "clip", f"model.init_from={oc}", "run.steps=1")
    state = torch.load(checkpoint, weights_only=True)
    assert state["tokenizer_json"] == imported.tokenizer_json  # trains with the model's own tokenizer
    assert state["model_config"]["quick_gelu"] and state["model_config"]["text"]["vocab_size"] == 49408
    moved = max(max_delta(state["model"][k], v) for k, v in imported.model_state.items())
    assert 0 < moved < 0.1  # one small step away from the imported weights
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert recorded["init_from"] == str(oc)


def test_architectures_without_a_counterpart_are_refused(dataset: Path, tmp_path: Path) -> None:
    config = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "ls_init_value": 1e-5},
        "text_cfg": {"hf_tokenizer_name": "local", "vocab_size": 1, "context_length": 16},
    }
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    (tmp_path / "tokenizer.json").write_text((dataset / "tokenizer.json").read_text())
    with pytest.raises(InteropError, match=r"vision_cfg.ls_init_value=1e-05 has no counterpart"):
        import_openclip(tmp_path)
    with pytest.raises(InteropError, match=r"no open_clip_config\.json"):
        import_openclip(tmp_path / "missing")
    checkpoint = trained(dataset, tmp_path / "catlip", "catlip", "model.preset=tiny-catlip",
                         "model.overrides={vision: {image_size: 32, patch_size: 16, width: 32, layers: 1, heads: 2}}")  # fmt: skip
    assert export_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "x")]) == 2
