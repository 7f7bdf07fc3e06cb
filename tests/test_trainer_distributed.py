"""Launcher environments → ranks, and a real two-process torchrun training run over gloo."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer_fixtures import make_dataset
from trainer.checkpoint import list_checkpoints, load_checkpoint
from trainer.distributed import DistEnv, first_host, resolve_dist_env
from trainer.metrics_log import read_records

ROOT = Path(__file__).resolve().parents[1]


def test_torchrun_variables_win() -> None:
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "MASTER_ADDR": "10.0.0.2", "MASTER_PORT": "29400",
           "SLURM_PROCID": "0", "SLURM_NTASKS": "2"}  # fmt: skip
    assert resolve_dist_env(env) == DistEnv(3, 1, 8, "10.0.0.2", 29400, "torchrun")


def test_slurm_variables_with_the_first_node_as_master() -> None:
    env = {
        "SLURM_PROCID": "5",
        "SLURM_LOCALID": "1",
        "SLURM_NTASKS": "8",
        "SLURM_JOB_NODELIST": "gpu[007-010],cpu1",
    }
    assert resolve_dist_env(env) == DistEnv(5, 1, 8, "gpu007", 29500, "slurm")
    resolved = resolve_dist_env(env, hostnames=lambda nodelist: ["node-a.cluster", "node-b.cluster"])
    assert resolved.master_addr == "node-a.cluster"
    step = {**env, "SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NODELIST": "a[3,5]", "MASTER_PORT": "12345"}
    assert resolve_dist_env(step) == DistEnv(5, 1, 4, "a3", 12345, "slurm")
    assert resolve_dist_env({**env, "MASTER_ADDR": "head"}).master_addr == "head"


def test_no_launcher_means_one_process() -> None:
    assert resolve_dist_env({}) == DistEnv() and not DistEnv().distributed and DistEnv().is_main


@pytest.mark.parametrize(
    ("nodelist", "first"),
    [("node1", "node1"), ("a,b", "a"), ("gpu[003-007,012],cpu1", "gpu003"), ("x[9]", "x9"),
     ("rack[2-3]-n[01-04]", "rack2-n01"), ("c-[10,12]suffix", "c-10suffix")],
)  # fmt: skip
def test_first_host_of_a_slurm_nodelist(nodelist: str, first: str) -> None:
    assert first_host(nodelist) == first


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_rank_torchrun_training_run(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", 64, shard_sizes=[7, 30, 27], image_size=40)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(free_port()), "-m", "trainer.train",
        "--data", str(dataset), "--preset", "tiny-clip", "--steps", "4", "--batch-size", "8", "--workers", "1",
        "--out", str(out), "--checkpoint-every", "2", "--device", "cpu",
        "--set", "logging.progress=false", "--set", "logging.every=1", "--set", "optim.warmup_steps=1",
        "--set", "model.overrides={vision: {image_size: 32, patch_size: 16, width: 32, layers: 1, heads: 2},"
                 " text: {width: 32, layers: 1, heads: 2, context_length: 12}, embed_dim: 32}",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [step for step, _ in list_checkpoints(out / "checkpoints")] == [2, 4]
    state = load_checkpoint(out / "checkpoints" / "step_00000004.pt")
    ranks = state["rank_states"]
    assert state["world_size"] == 2 and len(ranks) == 2
    # Both ranks reached step 4 (8 micro-batches each) holding bitwise-equal weights.
    assert [rank["data"]["step"] for rank in ranks] == [4, 4]
    assert ranks[0]["param_checksum"] == ranks[1]["param_checksum"]
    assert ranks[0]["data"]["fingerprint"]["rank"] == 0 and ranks[1]["data"]["fingerprint"]["rank"] == 1
    assert [record["step"] for record in read_records(out / "metrics.jsonl")] == [
        1,
        2,
        3,
        4,
    ]  # rank 0 logs once
    assert result.stdout.count('"step": 4') == 1  # one summary line, from rank 0
