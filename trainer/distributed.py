"""Process-group set-up from torchrun or SLURM variables, and the few collectives the loop needs.

``resolve_dist_env(environ)`` is pure: it reads torchrun's ``RANK``/``LOCAL_RANK``/
``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` first (torchrun may itself run under SLURM),
then SLURM's ``SLURM_PROCID``/``SLURM_LOCALID``/``SLURM_STEP_NUM_TASKS`` (the tasks of this
``srun`` step; ``SLURM_NTASKS`` otherwise) with the first host of ``SLURM_STEP_NODELIST``/
``SLURM_JOB_NODELIST`` as the master, else a single process. ``init_distributed`` then starts
NCCL on GPUs or gloo on CPUs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

DEFAULT_PORT = 29500
HostnameResolver = Callable[[str], list[str]]


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_PORT
    launcher: str = "single"  # single | torchrun | slurm

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``"gpu[003-007,012],cpu1"`` → ``"gpu003"``."""
    head, depth = "", 0
    for char in nodelist.strip():
        if char == "," and depth == 0:
            break
        depth += {"[": 1, "]": -1}.get(char, 0)
        head += char
    match = re.match(r"^([^\[]*)\[([^\]]+)\](.*)$", head)
    if not match:
        return head
    prefix, ranges, rest = match.groups()
    return first_host(prefix + ranges.split(",")[0].split("-")[0] + rest)


def scontrol_hostnames(nodelist: str) -> list[str]:
    """SLURM's own expansion of a node list (``scontrol show hostnames``)."""
    output = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    return output.split()


def resolve_dist_env(environ: Mapping[str, str], hostnames: HostnameResolver | None = None) -> DistEnv:
    """Who this process is, from launcher variables; ``hostnames`` expands a SLURM node list."""
    port = int(environ.get("MASTER_PORT", DEFAULT_PORT))
    if "RANK" in environ and "WORLD_SIZE" in environ:
        return DistEnv(
            rank=int(environ["RANK"]),
            local_rank=int(environ.get("LOCAL_RANK", 0)),
            world_size=int(environ["WORLD_SIZE"]),
            master_addr=environ.get("MASTER_ADDR", "127.0.0.1"),
            master_port=port,
            launcher="torchrun",
        )
    tasks = environ.get("SLURM_STEP_NUM_TASKS", environ.get("SLURM_NTASKS"))
    if "SLURM_PROCID" in environ and tasks is not None:
        nodelist = environ.get(
            "SLURM_STEP_NODELIST", environ.get("SLURM_JOB_NODELIST", environ.get("SLURM_NODELIST", ""))
        )
        if "MASTER_ADDR" in environ:
            master = environ["MASTER_ADDR"]
        elif nodelist:
            master = hostnames(nodelist)[0] if hostnames else first_host(nodelist)
        else:
            master = "127.0.0.1"
        return DistEnv(
            rank=int(environ["SLURM_PROCID"]),
            local_rank=int(environ.get("SLURM_LOCALID", 0)),
            world_size=int(tasks),
            master_addr=master,
            master_port=port,
            launcher="slurm",
        )
    return DistEnv()


def pick_device(env: DistEnv, requested: str = "auto") -> torch.device:
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if requested.startswith("cuda:"):
        return torch.device(requested)
    if not torch.cuda.is_available():
        raise RuntimeError("run.device is cuda but no CUDA device is visible: use --device cpu")
    return torch.device("cuda", env.local_rank % torch.cuda.device_count())


def init_distributed(env: DistEnv, requested_device: str = "auto") -> torch.device:
    """Sets the device and, for world_size > 1, joins the process group (NCCL on GPU, gloo on CPU)."""
    device = pick_device(env, requested_device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if env.distributed and not dist.is_initialized():
        # env:// also reuses torchrun's agent store; for SLURM these variables are the only source.
        os.environ.update(
            MASTER_ADDR=env.master_addr,
            MASTER_PORT=str(env.master_port),
            RANK=str(env.rank),
            WORLD_SIZE=str(env.world_size),
            LOCAL_RANK=str(env.local_rank),
        )
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://", rank=env.rank, world_size=env.world_size)
    return device


def resolve_from_os() -> DistEnv:
    return resolve_dist_env(os.environ, scontrol_hostnames if shutil.which("scontrol") else None)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    return not active() or dist.get_rank() == 0


def gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order (just ``[value]`` without a process group)."""
    if not active():
        return [value]
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def mean_across_ranks(values: torch.Tensor) -> torch.Tensor:
    if active():
        values = values.clone()
        dist.all_reduce(values)
        values /= dist.get_world_size()
    return values


def barrier() -> None:
    if active():
        dist.barrier()


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Averages the gradients across ranks in place (what DDP's reducer does), in one flat all-reduce."""
    if not active():
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch._utils._flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for grad, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        grad.copy_(synced)


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm statistics) to every rank, as DDP does before each forward."""
    if not active():
        return
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)
