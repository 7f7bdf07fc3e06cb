"""Model towers: shapes and normalisation of the tiny presets (CPU), parameter counts of the real
presets against published figures (built on the meta device, no forward), CLIP causal masking, BERT
padding invariance, grad checkpointing, and the config loader's round trips and error messages.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import yaml
from torch import nn
from torch.testing import assert_close

import trainer.models.efficientnet as efficientnet_module
import trainer.models.layers as layers_module
from tests.trainer_fixtures import torch_threads
from trainer.models import (
    PRESETS,
    ModelConfig,
    VisionConfig,
    build_image_tower,
    build_model,
    build_text_tower,
    load_model_config,
    model_config_from_dict,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with torch_threads(1):
        yield


TINY = ("tiny-clip", "tiny-align", "tiny-catlip", "tiny-siglip")
NUM_CLASSES = 37


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _tiny(name: str, **overrides) -> nn.Module:
    torch.manual_seed(0)
    if PRESETS[name].text is None:
        overrides.setdefault("num_classes", NUM_CLASSES)
    return build_model(load_model_config(name, **overrides))


def _tokens(lengths: list[int], width: int, vocab: int = 4096, seed: int = 0) -> torch.Tensor:
    """[CLS]=2 ... [SEP]=3 then [PAD]=0, like the dataset's WordPiece tokenizer."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        tokens[row, 0] = 2
        tokens[row, 1 : length - 1] = torch.randint(5, vocab, (length - 2,), generator=generator)
        tokens[row, length - 1] = 3
    return tokens


def _images(batch: int = 3, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", TINY)
def test_tiny_presets_forward_shapes_and_unit_norm(name: str):
    model = _tiny(name).eval()
    cfg = model.config
    assert 0.5e6 <= _count(model) <= 3e6, f"{name} has {_count(model)} parameters"
    images, tokens = _images(), _tokens([5, 9, 12], 20)
    with torch.no_grad():
        outputs = model(images, tokens)
        image_features = model.encode_image(images)
    assert outputs["image_features"].shape == (3, cfg.embed_dim)
    assert_close(outputs["image_features"].norm(dim=1), torch.ones(3))
    assert_close(image_features, outputs["image_features"])
    if cfg.text is None:
        assert set(outputs) == {"logits", "image_features"}
        assert outputs["logits"].shape == (3, NUM_CLASSES)
        assert isinstance(model.classifier, nn.Linear)
        assert (model.classifier.in_features, model.classifier.out_features) == (cfg.embed_dim, NUM_CLASSES)
    else:
        assert outputs["text_features"].shape == (3, cfg.embed_dim)
        assert_close(outputs["text_features"].norm(dim=1), torch.ones(3))
        with torch.no_grad():
            assert_close(model.encode_text(tokens), outputs["text_features"])
            assert set(model(images, None)) == {"image_features"}


def _meta_model(name: str, **overrides) -> nn.Module:
    with torch.device("meta"):
        return build_model(load_model_config(name, **overrides))


def test_vit_b16_image_tower_matches_published_parameter_count():
    clip = _meta_model("vit-b-16-clip")
    # OpenAI CLIP ViT-B/16 (open_clip's model profile): image 86.19M, text 63.43M, total 149.62M.
    assert abs(_count(clip.visual) - 86.19e6) / 86.19e6 < 0.005
    assert abs(_count(clip.text) - 63.43e6) / 63.43e6 < 0.005
    assert abs(_count(clip) - 149.62e6) / 149.62e6 < 0.005
    # ViT-B/16 backbone without a projection (Dosovitskiy et al. 2021, Table 1): 86M.
    catlip = _meta_model("vit-b-16-catlip", num_classes=1000)
    assert abs(_count(catlip.visual) - 86e6) / 86e6 < 0.02
    assert catlip.classifier.in_features == 768


def test_efficientnet_b3_and_bert_base_match_published_parameter_counts():
    align = _meta_model("efficientnet-b3-align")
    visual = align.visual
    with_imagenet_head = _count(visual) - _count(visual.proj) + visual.head_channels * 1000 + 1000
    assert visual.head_channels == 1536
    assert with_imagenet_head == 12_233_232  # torchvision's efficientnet_b3 num_params (paper: 12M)
    assert visual.proj.out_features == 640
    with torch.device("meta"):
        bert = build_text_tower(
            dataclasses.replace(PRESETS["efficientnet-b3-align"].text, context_length=512), 768
        )
    # BERT-base, 110M (Devlin et al. 2019), which adds a 0.59M pooler and token-type embeddings.
    assert abs(_count(bert) - _count(bert.proj) - 110e6) / 110e6 < 0.02


def _clip_hidden_states(tower: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    captured = []
    handle = tower.ln_final.register_forward_hook(lambda module, args, output: captured.append(output))
    with torch.no_grad():
        tower(tokens)
    handle.remove()
    return captured[0]


def test_clip_text_tower_is_causal_and_pools_at_end_of_text():
    model = _tiny("tiny-clip").eval()
    tokens = _tokens([6, 10], 16)
    hidden = _clip_hidden_states(model.text, tokens)
    changed_late = tokens.clone()
    changed_late[:, 7] = 99  # after row 0's [SEP] (position 5), inside row 1's text
    hidden_late = _clip_hidden_states(model.text, changed_late)
    assert_close(hidden_late[:, :7], hidden[:, :7])  # positions before the change cannot see it
    assert not torch.allclose(hidden_late[1, 7:], hidden[1, 7:])
    # Features are the projected state at the end of text, the last non-pad position.
    with torch.no_grad():
        features = model.encode_text(tokens)
    pooled = hidden[torch.arange(2), torch.tensor([5, 9])] @ model.text.text_projection
    assert_close(features, torch.nn.functional.normalize(pooled, dim=-1))
    changed_early = tokens.clone()
    changed_early[:, 2] = 99
    with torch.no_grad():
        assert not torch.allclose(model.encode_text(changed_early)[0], features[0], atol=1e-4, rtol=0)
        # More [PAD] after the end of text changes nothing.
        assert_close(model.encode_text(_tokens([6, 10], 30)), features)


def test_bert_text_tower_ignores_padding_and_is_bidirectional():
    model = _tiny("tiny-align").eval()
    tokens = _tokens([6, 10], 12)
    with torch.no_grad():
        features = model.encode_text(tokens)
        assert_close(model.encode_text(_tokens([6, 10], 40)), features)
        changed_last_word = tokens.clone()
        changed_last_word[0, 4] = 99  # the [CLS] state at position 0 sees later tokens
        assert not torch.allclose(model.encode_text(changed_last_word)[0], features[0], atol=1e-4, rtol=0)
        assert_close(model.encode_text(changed_last_word)[1], features[1])


def test_text_longer_than_context_is_rejected():
    model = _tiny("tiny-align")
    with pytest.raises(ValueError, match="context_length"):
        model.encode_text(_tokens([5], 65))
    with pytest.raises(ValueError, match="64x64"):
        _tiny("tiny-clip").encode_image(_images(size=32))


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-align", "tiny-catlip"])
def test_grad_checkpointing_gives_the_same_gradients(name: str, monkeypatch: pytest.MonkeyPatch):
    calls = []

    def counting_checkpoint(function, *args, **kwargs):
        calls.append(function)
        return torch.utils.checkpoint.checkpoint(function, *args, **kwargs)

    monkeypatch.setattr(layers_module, "checkpoint", counting_checkpoint)
    monkeypatch.setattr(efficientnet_module, "checkpoint", counting_checkpoint)
    images, tokens = _images(4), _tokens([5, 7, 9, 11], 12)

    def gradients(enabled: bool) -> dict[str, torch.Tensor]:
        model = _tiny(name).train()
        model.set_grad_checkpointing(enabled)
        torch.manual_seed(1)  # same dropout / stochastic-depth draws in both runs
        outputs = model(images, tokens)
        loss = sum(
            (value * torch.arange(value.numel()).view_as(value).sin()).sum() for value in outputs.values()
        )
        loss.backward()
        return {key: p.grad.clone() for key, p in model.named_parameters() if p.grad is not None}

    plain = gradients(False)
    assert not calls
    checkpointed = gradients(True)
    assert len(calls) >= 4, "checkpointing was not applied to the blocks"
    assert plain.keys() == checkpointed.keys()
    for key in plain:
        assert_close(checkpointed[key], plain[key], msg=key)


def test_grad_checkpointing_from_config():
    model = _tiny("tiny-clip", grad_checkpointing=True)
    assert model.visual.transformer.grad_checkpointing and model.text.transformer.grad_checkpointing
    model.set_grad_checkpointing(False)
    assert not model.visual.transformer.grad_checkpointing


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_round_trips_through_asdict_json_and_yaml(name: str, tmp_path):
    cfg = load_model_config(name)
    assert model_config_from_dict(dataclasses.asdict(cfg)) == cfg
    json_path, yaml_path = tmp_path / "model.json", tmp_path / "model.yaml"
    json_path.write_text(json.dumps(dataclasses.asdict(cfg)))
    yaml_path.write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    assert load_model_config(str(json_path)) == cfg
    assert load_model_config(str(yaml_path)) == cfg
    assert load_model_config(name) is not PRESETS[name]


def test_overrides_merge_nested_keys():
    cfg = load_model_config("tiny-clip", text={"vocab_size": 30000}, num_classes=None, embed_dim=64)
    assert cfg.text.vocab_size == 30000 and cfg.text.width == PRESETS["tiny-clip"].text.width
    assert cfg.embed_dim == 64
    assert PRESETS["tiny-clip"].text.vocab_size == 4096, "overrides must not mutate the presets"
    assert load_model_config("tiny-clip", text=None).text is None
    vision = VisionConfig(kind="vit", image_size=32, patch_size=8, width=64, layers=1, heads=2)
    assert load_model_config("tiny-clip", vision=vision).vision == vision
    assert isinstance(load_model_config("tiny-align").vision, VisionConfig)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"depth": 3}, r"unknown option model.depth \(known: name, vision, text"),
        ({"vision": {"patch": 8}}, r"unknown option model.vision.patch \(known: kind,"),
        ({"vision": {"layers": "12"}}, r"model.vision.layers must be int, got '12'"),
        ({"vision": {"kind": "resnet"}}, r"vision.kind must be one of"),
        ({"vision": {"patch_size": 7}}, r"not a multiple of patch_size"),
        ({"text": {"heads": 3}}, r"not divisible by text.heads"),
        ({"embed_dim": None}, r"model.embed_dim must not be null"),
    ],
)
def test_config_errors_are_clear(overrides: dict, message: str):
    with pytest.raises(ValueError, match=message):
        load_model_config("tiny-clip", **overrides)


def test_config_file_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match=r"neither a model preset .* nor an existing JSON/YAML file"):
        load_model_config(str(tmp_path / "missing.json"))
    bad = tmp_path / "model.toml"
    bad.write_text("x = 1")
    with pytest.raises(ValueError, match=r"must end in \.json, \.yaml or \.yml"):
        load_model_config(str(bad))
    broken = tmp_path / "model.yaml"
    broken.write_text("name: [unclosed")
    with pytest.raises(ValueError, match="cannot parse model config"):
        load_model_config(str(broken))
    listing = tmp_path / "model.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ValueError, match="mapping at the top level"):
        load_model_config(str(listing))
    nameless = tmp_path / "nameless.json"
    nameless.write_text(json.dumps({"embed_dim": 8}))
    with pytest.raises(ValueError, match=r"^model: .*name"):
        load_model_config(str(nameless))


def test_catlip_model_needs_num_classes():
    with pytest.raises(ValueError, match="needs num_classes"):
        build_model(load_model_config("tiny-catlip"))
    cfg = ModelConfig(
        "custom", VisionConfig(kind="efficientnet", image_size=64, width_mult=0.25, depth_mult=0.25)
    )
    cfg.embed_dim, cfg.num_classes = 96, 10
    model = build_model(cfg)  # EfficientNet tower (head width 320) projected to embed_dim 96
    assert model.classifier.in_features == 96
    with torch.no_grad():
        assert model.eval()(_images(2))["logits"].shape == (2, 10)


def test_image_towers_alone():
    vit = build_image_tower(
        VisionConfig(kind="vit", image_size=32, patch_size=8, width=64, layers=1, heads=2), None
    )
    assert vit(_images(2, 32)).shape == (2, 64)


def test_efficientnet_batchnorm_momentum_comes_from_the_config():
    def momenta(name: str, **vision) -> set[float]:
        cfg = load_model_config(name, vision=vision)
        return {m.momentum for m in build_model(cfg).modules() if isinstance(m, nn.BatchNorm2d)}

    assert momenta("efficientnet-b3-align") == {0.01}  # TF's decay 0.99
    assert momenta("tiny-align") == {0.1}  # short CPU runs: statistics must follow the weights
    assert momenta("tiny-align", bn_momentum=0.3) == {0.3}
    with pytest.raises(ValueError, match=r"vision.bn_momentum must be in \(0, 1\]"):
        load_model_config("tiny-align", vision={"bn_momentum": 0.0})
