"""deploy/: the GPU-cluster launchers — shell syntax, the SLURM script run against stub srun/scontrol,
the torchrun wrapper's commands, and the structure of the Kubernetes manifests."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SBATCH = DEPLOY / "slurm" / "train.sbatch"
TORCHRUN = DEPLOY / "train_torchrun.sh"
SHELL_SCRIPTS = sorted([*DEPLOY.rglob("*.sh"), *DEPLOY.rglob("*.sbatch")])


def stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def sbatch_directives() -> dict[str, str]:
    directives = {}
    for line in SBATCH.read_text().splitlines():
        if line.startswith("#SBATCH"):
            key, _, value = line.split()[1].partition("=")
            directives[key] = value
    return directives


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_syntax(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_there_are_launch_scripts():
    assert {p.name for p in SHELL_SCRIPTS} >= {"train_torchrun.sh", "train.sbatch"}


def test_sbatch_one_task_per_gpu():
    directives = sbatch_directives()
    gpus = int(directives["--gres"].rsplit(":", 1)[1])
    assert int(directives["--ntasks-per-node"]) == gpus
    assert int(directives["--nodes"]) >= 1
    # sbatch stops reading directives at the first command: all of them must come before it.
    lines = [line for line in SBATCH.read_text().splitlines() if line.strip()]
    first_command = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    assert all(i < first_command for i, line in enumerate(lines) if line.startswith("#SBATCH"))


def run_sbatch(tmp_path: Path, **env: str) -> tuple[list[str], dict[str, str]]:
    """Runs the batch script with stub scontrol/srun; returns srun's argv and the environment it saw."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A long node list: a reader that closes the pipe early would make scontrol die of SIGPIPE.
    stub(bin_dir, "scontrol", '[ "$1 $2" = "show hostnames" ] || exit 3\nseq -f "gpu-%02g" 7 5000\n')
    record = tmp_path / "srun.txt"
    stub(bin_dir, "srun", f'printf "%s\\n" "$@" > {record}\nenv > {record}.env\n')
    submit = tmp_path / "submit"
    submit.mkdir()
    full_env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_NODELIST": "gpu-[07-5000]",
        "SLURM_JOB_ID": "4242",
        "SLURM_SUBMIT_DIR": str(submit),
        **env,
    }
    result = subprocess.run(
        ["bash", str(SBATCH), "--config", "clip.yaml"], env=full_env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in Path(f"{record}.env").read_text().splitlines() if "=" in line)
    return record.read_text().splitlines(), seen


def test_sbatch_rendezvous_on_the_first_node(tmp_path):
    argv, env = run_sbatch(tmp_path)
    assert env["MASTER_ADDR"] == "gpu-07"
    assert env["MASTER_PORT"] == str(20000 + 4242 % 20000)
    assert env["NO_ALBUMENTATIONS_UPDATE"] == "1"
    assert "--kill-on-bad-exit=1" in argv
    assert argv[-5:] == ["python", "-m", "trainer.train", "--config", "clip.yaml"]
    assert not any(arg.startswith("--container-image") for arg in argv)


def test_sbatch_tasks_resolve_to_ranks(tmp_path):
    """Each task srun starts sees the script's variables plus its own SLURM_*: the trainer's ranks follow."""
    from trainer.distributed import resolve_dist_env

    _, env = run_sbatch(tmp_path)
    nodes, per_node = 2, int(sbatch_directives()["--ntasks-per-node"])
    ranks = []
    for node in range(nodes):
        for local in range(per_node):
            task = {**env, "SLURM_PROCID": str(node * per_node + local), "SLURM_LOCALID": str(local),
                    "SLURM_NTASKS": str(nodes * per_node), "SLURM_STEP_NODELIST": "gpu-[07-08]"}  # fmt: skip
            dist_env = resolve_dist_env(task)
            assert dist_env.launcher == "slurm" and dist_env.local_rank == local
            assert (dist_env.master_addr, dist_env.master_port) == ("gpu-07", 24242)
            assert dist_env.world_size == nodes * per_node
            ranks.append(dist_env.rank)
    assert ranks == list(range(nodes * per_node))


def test_sbatch_container_mode(tmp_path):
    argv, env = run_sbatch(tmp_path, CONTAINER_IMAGE="registry#curation/trainer:1", MASTER_PORT="31000")
    assert "--container-image=registry#curation/trainer:1" in argv
    assert f"--container-mounts={tmp_path / 'submit'}:/workspace" in argv
    assert env["MASTER_PORT"] == "31000"


def run_torchrun_script(tmp_path: Path, gpus: int | None, **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpus is None:
        stub(bin_dir, "nvidia-smi", "echo 'NVIDIA-SMI has failed' >&2; exit 9\n")
    else:
        stub(
            bin_dir,
            "nvidia-smi",
            "".join(f"echo 'GPU {i}: NVIDIA H100 (UUID: GPU-{i})'\n" for i in range(gpus)),
        )
    base = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "DRY_RUN": "1"}
    return subprocess.run(
        ["bash", str(TORCHRUN), "--config", "clip.yaml"], env={**base, **env}, capture_output=True, text=True
    )


def test_torchrun_single_node_uses_every_gpu(tmp_path):
    result = run_torchrun_script(tmp_path, gpus=4)
    assert result.returncode == 0, result.stderr
    assert shlex.split(result.stdout) == [
        "torchrun", "--nproc-per-node=4", "--standalone", "-m", "trainer.train", "--config", "clip.yaml",
    ]  # fmt: skip


def test_torchrun_multi_node_rendezvous(tmp_path):
    result = run_torchrun_script(tmp_path, gpus=8, NNODES="4", MASTER_ADDR="node0", RDZV_ID="run-17")
    assert result.returncode == 0, result.stderr
    words = shlex.split(result.stdout)
    assert words[:6] == [
        "torchrun", "--nproc-per-node=8", "--nnodes=4", "--rdzv-backend=c10d",
        "--rdzv-endpoint=node0:29500", "--rdzv-id=run-17",
    ]  # fmt: skip
    assert words[6:9] == ["-m", "trainer.train", "--config"]


@pytest.mark.parametrize(
    ("gpus", "env", "message"),
    [
        (None, {}, "no GPU found by nvidia-smi; set NPROC_PER_NODE"),
        (8, {"NNODES": "2"}, "NNODES=2 needs MASTER_ADDR"),
    ],
)
def test_torchrun_mistakes(tmp_path, gpus, env, message):
    result = run_torchrun_script(tmp_path, gpus=gpus, **env)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def torchrun_words(container: dict) -> list[str]:
    assert container["command"] == ["bash", "-c"]
    return shlex.split(container["args"][0])


def gpu_limit(container: dict) -> int:
    return int(container["resources"]["limits"]["nvidia.com/gpu"])


def assert_shm_in_memory(pod: dict, container: dict) -> None:
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"


def test_pytorchjob_structure():
    job = yaml.safe_load((DEPLOY / "k8s" / "pytorchjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] == 1 and specs["Worker"]["replicas"] >= 1
    assert specs["Master"]["template"] == specs["Worker"]["template"]
    pod = specs["Master"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "pytorch"  # the operator injects its variables into this container only
    assert job["spec"]["nprocPerNode"] == str(gpu_limit(container))
    words = torchrun_words(container)
    assert words[:2] == ["exec", "torchrun"]
    assert words[words.index("-m") + 1] == "trainer.train"
    for flag, variable in [("--nnodes", "PET_NNODES"), ("--node-rank", "PET_NODE_RANK"),
                           ("--master-addr", "MASTER_ADDR"), ("--nproc-per-node", "PET_NPROC_PER_NODE")]:  # fmt: skip
        assert f"{flag}=${{{variable}}}" in words
    assert "curation-trainer" in container["image"]
    assert_shm_in_memory(pod, container)


def test_indexed_job_structure():
    service, job = yaml.safe_load_all((DEPLOY / "k8s" / "indexed-job.yaml").read_text())
    assert service["kind"] == "Service" and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"job-name": job["metadata"]["name"]}
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert spec["completions"] == spec["parallelism"] == int(env["NNODES"])
    assert int(env["NPROC_PER_NODE"]) == gpu_limit(container)
    words = torchrun_words(container)
    assert "--node-rank=${JOB_COMPLETION_INDEX}" in words
    master = next(w for w in words if w.startswith("--master-addr=")).split("=", 1)[1]
    assert master == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    port = int(next(w for w in words if w.startswith("--master-port=")).split("=", 1)[1])
    assert port in {p["port"] for p in service["spec"]["ports"]}
    assert words[words.index("-m") + 1] == "trainer.train"
    assert_shm_in_memory(pod, container)


@pytest.mark.parametrize(
    ("manifest", "env", "expected"),
    [
        (
            "pytorchjob.yaml",
            {"PET_NNODES": "3", "PET_NPROC_PER_NODE": "8", "PET_NODE_RANK": "2",
             "MASTER_ADDR": "curation-train-master-0", "MASTER_PORT": "23456"},
            ["--nnodes=3", "--nproc-per-node=8", "--node-rank=2", "--master-addr=curation-train-master-0",
             "--master-port=23456"],
        ),
        (
            "indexed-job.yaml",
            {"JOB_COMPLETION_INDEX": "1"},
            ["--nnodes=2", "--nproc-per-node=8", "--node-rank=1", "--master-addr=curation-train-0.curation-train",
             "--master-port=29500"],
        ),
    ],
)  # fmt: skip
def test_manifest_command_expands_in_the_pod_shell(tmp_path, manifest, env, expected):
    """The container's `bash -c` line, run with the variables the operator/Job controller sets."""
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / manifest).read_text()))
    pod = docs[-1]["spec"].get("pytorchReplicaSpecs", {}).get("Master", docs[-1]["spec"])["template"]["spec"]
    (container,) = pod["containers"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(bin_dir, "torchrun", 'printf "%s\\n" "$@"\n')
    container_env = {e["name"]: e["value"] for e in container.get("env", [])}
    result = subprocess.run(
        [*container["command"], *container["args"]],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", **container_env, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    argv = result.stdout.splitlines()
    assert argv[: len(expected)] == expected
    assert argv[len(expected) : len(expected) + 2] == ["-m", "trainer.train"]


def test_manifests_use_the_image_the_readme_builds():
    readme = (DEPLOY / "README.md").read_text()
    for manifest in (DEPLOY / "k8s").glob("*.yaml"):
        for image in re.findall(r"image: (\S+)", manifest.read_text()):
            assert image.split("/")[-1].split(":")[0] in readme, image


def trainer_config(argv: list[str]):
    """The TrainConfig ``python -m trainer.train argv`` would run with (options checked, nothing loaded)."""
    from trainer.config import validate
    from trainer.models.config import load_model_config
    from trainer.train import config_from_args, parser

    cfg = config_from_args(parser().parse_args(argv))
    validate(cfg)
    load_model_config(cfg.model.preset)
    return cfg


@pytest.mark.parametrize("manifest", ["pytorchjob.yaml", "indexed-job.yaml"])
def test_manifest_trainer_options_are_valid(manifest):
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / manifest).read_text()))
    pod = docs[-1]["spec"].get("pytorchReplicaSpecs", {}).get("Master", docs[-1]["spec"])["template"]["spec"]
    words = torchrun_words(pod["containers"][0])
    cfg = trainer_config(words[words.index("trainer.train") + 1 :])
    # Every pod writes checkpoints where all of them read: the shared volume.
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert any(cfg.out_dir.startswith(path + "/") for path in mounts)
    assert cfg.checkpoint.resume == "latest"  # a restarted pod resumes instead of starting over
