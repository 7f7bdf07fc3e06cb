"""Exact resume: stop a run, resume it, and its weights equal those of a run never stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.trainer_fixtures import make_dataset, torch_threads
from trainer.checkpoint import (
    checkpoint_path,
    find_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from trainer.config import load_train_config
from trainer.data import stream
from trainer.loop import train
from trainer.metrics_log import read_records

STEPS = 7


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("resume") / "ds", 96, image_size=40)


def config(dataset: Path, out: Path, workers: int, *extra: str):
    return load_train_config(
        None,
        [
            f"data.paths=[{dataset}]",
            "model.preset=tiny-clip",
            f"out_dir={out}",
            f"run.steps={STEPS}",
            "run.grad_accum=2",
            f"data.workers={workers}",
            "data.batch_size=8",
            "data.segment_steps=6",  # resumes land inside a segment: the data stream is replayed
            "data.shuffle_buffer=24",
            "data.shuffle_initial=6",
            "optim.warmup_steps=3",
            "optim.ema_decay=0.9",
            "optim.clip_grad_norm=1.0",
            "checkpoint.every=2",
            "logging.every=1",
            "logging.progress=false",
            "model.overrides={vision: {image_size: 32, patch_size: 16, width: 32, layers: 1, heads: 2},"
            " text: {width: 32, layers: 1, heads: 2, context_length: 12}, embed_dim: 32}",
            *extra,
        ],
    )


def final_state(result) -> dict:
    return load_checkpoint(result.checkpoint)


def assert_same_training_state(a: dict, b: dict) -> None:
    for part in ("model", "objective", "ema"):
        assert a[part].keys() == b[part].keys()
        for name in a[part]:
            assert torch.equal(a[part][name], b[part][name]), f"{part}.{name} differs"
    moments_a = [s["exp_avg"] for s in a["optimizer"]["state"].values()]
    moments_b = [s["exp_avg"] for s in b["optimizer"]["state"].values()]
    assert all(torch.equal(x, y) for x, y in zip(moments_a, moments_b))
    assert a["scheduler"] == b["scheduler"]
    assert a["rank_states"][0]["data"] == b["rank_states"][0]["data"]


@pytest.mark.parametrize("workers", [0, 2])
def test_stop_and_resume_equals_an_uninterrupted_run(dataset: Path, tmp_path: Path, workers: int) -> None:
    uninterrupted = final_state(train(config(dataset, tmp_path / "a", workers)))

    stopped = config(dataset, tmp_path / "b", workers)
    first = train(stopped, stop_at=5)  # checkpoints at steps 2, 4 and 5
    assert first.step == 5 and [step for step, _ in list_checkpoints(stopped.checkpoint_dir)] == [2, 4, 5]
    # As if killed before step 5 reached the disk: the newest checkpoint is step 4, the log has step 5.
    checkpoint_path(stopped.checkpoint_dir, 5).unlink()
    resumed = train(config(dataset, tmp_path / "b", workers, "checkpoint.resume=latest"))
    assert resumed.step == STEPS

    assert_same_training_state(uninterrupted, final_state(resumed))
    steps = [record["step"] for record in read_records(tmp_path / "b" / "metrics.jsonl")]
    assert steps == list(range(1, STEPS + 1))  # the step logged after the checkpoint is not doubled


def test_resume_without_the_data_position_would_differ(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The negative control: the comparison above does detect a resume that loses the data position.
    uninterrupted = final_state(train(config(dataset, tmp_path / "a", 0)))
    train(config(dataset, tmp_path / "b", 0), stop_at=4)  # micro-step 8: inside segment 1
    monkeypatch.setattr(stream, "restore_positions", lambda state, cfg: {})
    resumed = final_state(train(config(dataset, tmp_path / "b", 0, "checkpoint.resume=latest")))
    assert not all(
        torch.equal(uninterrupted["model"][k], resumed["model"][k]) for k in uninterrupted["model"]
    )


def test_resume_latest_without_checkpoints_starts_from_scratch(dataset: Path, tmp_path: Path) -> None:
    result = train(config(dataset, tmp_path, 0, "checkpoint.resume=latest", "run.steps=1"))
    assert result.step == 1 and result.checkpoint.is_file()


def test_checkpoints_are_written_atomically_and_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = save_checkpoint(checkpoint_path(tmp_path, 1), {"model": {"w": torch.ones(2)}, "step": 1})

    def crash(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(checkpoint_path(tmp_path, 2), {"model": {}, "step": 2})
    monkeypatch.undo()
    assert not checkpoint_path(tmp_path, 2).exists()  # no torn file under the real name
    assert find_checkpoint(tmp_path, "latest") == good
    for step in (2, 3, 4):
        save_checkpoint(checkpoint_path(tmp_path, step), {"model": {}, "step": step})
    assert not list(tmp_path.glob(".step_*"))  # the crashed save's temporary file is gone
    prune_checkpoints(tmp_path, keep_last=2)
    assert [step for step, _ in list_checkpoints(tmp_path)] == [3, 4]
    assert load_checkpoint(find_checkpoint(tmp_path, "latest"))["step"] == 4
