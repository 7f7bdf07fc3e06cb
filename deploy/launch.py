"""Builds the curation job's command line for Dataflow, Flink, Spark or a local run, checks it, runs it.

    python deploy/launch.py dataflow --project P --region us-central1 --temp-location gs://B/tmp \\
        --input 'gs://B/pool/*.parquet' --output gs://B/curated --dry-run

prints the exact ``python -m pipelines.curate …`` command; without ``--dry-run`` it runs it from the
repository root. Arguments after ``--`` go to the curation job unchanged (its own options: seed,
caps, …). A user's mistake (no project, a local output with a cluster runner, a misspelt flag) stops
here with a one-line error instead of minutes later on a worker.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CURATE_MODULE = "pipelines.curate"
# The curation job's own required options (pipelines/options.py): launch setting → flag.
JOB_FLAGS = {"input": "--input", "output": "--output", "allowlist": "--allowlist"}
# Curation options naming files that workers open (so they must be shared on a cluster).
WORKER_PATH_FLAGS = ("--input", "--output", "--allowlist", "--eval_blocklist", "--token_frequencies")
# Filesystems that every worker of a cluster can reach (Beam's FileSystems schemes).
REMOTE_SCHEMES = ("gs://", "s3://", "hdfs://", "azfs://")
DEFAULT_WORKER_POOL_PORT = 50000
# n2-standard-8: 8 vCPU / 32 GB, room for eight SDK processes each holding the query matcher.
DATAFLOW_DEFAULTS = {"num_workers": 10, "max_num_workers": 100, "autoscaling_algorithm": "THROUGHPUT_BASED",
                     "machine_type": "n2-standard-8", "disk_size_gb": 50}  # fmt: skip


class LaunchError(ValueError):
    """A user's mistake in the launch settings; the message is one line that says what to do."""


def build_args(runner: str, **settings: Any) -> list[str]:
    """The arguments of ``python -m pipelines.curate`` for ``runner`` with ``settings``.

    ``runner`` is one of ``local``, ``dataflow``, ``flink``, ``spark``; settings are the keyword
    names of the CLI options (``project``, ``temp_location``, ``flink_master``, …) plus ``input``,
    ``output``, ``allowlist`` and ``extra`` (curation arguments passed through). Raises LaunchError.
    """
    if runner not in _BUILDERS:
        raise LaunchError(f"unknown runner {runner!r}: choose one of {', '.join(_BUILDERS)}")
    builder, allowed = _BUILDERS[runner]
    unknown = sorted(set(settings) - allowed - {*JOB_FLAGS, "extra"})
    if unknown:
        raise LaunchError(f"{runner} does not take {', '.join(unknown)}")
    values = {key: value for key, value in settings.items() if value not in (None, [], ())}
    extra = list(values.pop("extra", []))
    args = []
    for key, flag in JOB_FLAGS.items():
        if not values.get(key):
            raise LaunchError(f"set --{key}")
        args.append(f"{flag}={values.pop(key)}")
    if runner != "local":
        _check_shared_paths(runner, args + extra)
        if not any(arg.startswith("--synset_tagger") for arg in extra):
            # The worker image carries textblob's bundled tagger, not nltk's perceptron data.
            extra.append("--synset_tagger=pattern")
    return args + builder(values) + extra


def _check_shared_paths(runner: str, args: list[str]) -> None:
    """Every file the workers read or write must be on a filesystem all of them reach."""
    for index, arg in enumerate(args):
        flag, sep, value = arg.partition("=")
        if flag not in WORKER_PATH_FLAGS:
            continue
        if not sep:
            value = args[index + 1] if index + 1 < len(args) else ""
        for path in filter(None, (part.strip() for part in value.split(","))):
            if not path.startswith(REMOTE_SCHEMES):
                raise LaunchError(
                    f"{flag} {path} is not on a shared filesystem: {runner} workers run on other "
                    f"machines, use a {'/'.join(s.rstrip(':/') for s in REMOTE_SCHEMES)} URL"
                )


def _local(s: dict[str, Any]) -> list[str]:
    # FnApiRunner directly: DirectRunner first tries to download the Prism binary.
    args = ["--runner=FnApiRunner"]
    workers = int(s.get("workers", 1))
    if workers > 1:
        args += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    return args


def _dataflow(s: dict[str, Any]) -> list[str]:
    s = {**DATAFLOW_DEFAULTS, **s}
    for key in ("project", "region", "temp_location"):
        if not s.get(key):
            raise LaunchError(f"dataflow needs --{key.replace('_', '-')}")
    if s.get("image") and s.get("setup_file"):
        raise LaunchError("give --image or --setup-file, not both: the image already holds the project")
    if s["autoscaling_algorithm"] not in ("THROUGHPUT_BASED", "NONE"):
        raise LaunchError("--autoscaling-algorithm is THROUGHPUT_BASED or NONE")
    temp = str(s["temp_location"]).rstrip("/")
    args = [
        "--runner=DataflowRunner",
        f"--project={s['project']}",
        f"--region={s['region']}",
        f"--temp_location={temp}",
        f"--staging_location={s.get('staging_location') or temp + '/staging'}",
        f"--num_workers={s['num_workers']}",
        f"--max_num_workers={s['max_num_workers']}",
        f"--autoscaling_algorithm={s['autoscaling_algorithm']}",
        f"--machine_type={s['machine_type']}",
        f"--disk_size_gb={s['disk_size_gb']}",
        "--experiments=use_runner_v2",
    ]
    if s.get("job_name"):
        args.append(f"--job_name={s['job_name']}")
    if s.get("image"):
        # The SDK inside the image runs the job: nothing to stage, nothing to pip install at start-up.
        args += [f"--sdk_container_image={s['image']}", "--sdk_location=container"]
    else:
        args.append(f"--setup_file={s.get('setup_file') or REPO_ROOT / 'setup.py'}")
    if s.get("harness_threads"):
        args.append(f"--number_of_worker_harness_threads={int(s['harness_threads'])}")
    args += [f"--experiments={e}" for e in s.get("experiments", []) if e != "use_runner_v2"]
    args += [f"--dataflow_service_options={o}" for o in s.get("service_options", [])]
    if s.get("subnetwork"):
        args.append(f"--subnetwork={s['subnetwork']}")
    if s.get("no_public_ips"):
        args.append("--no_use_public_ips")
    if s.get("service_account"):
        args.append(f"--service_account_email={s['service_account']}")
    _check_with_beam(args)
    return args


def _check_with_beam(args: list[str]) -> None:
    """Beam's own Dataflow checks (project id, job name, gs:// bucket names, worker counts), run here."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, WorkerOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator

    options = PipelineOptions(args)
    validator = PipelineOptionsValidator(options, runner=None)
    cloud = options.view_as(GoogleCloudOptions)
    errors = [
        *validator.validate_cloud_options(cloud),
        *validator.validate_gcs_path(cloud, "temp_location"),
        *validator.validate_gcs_path(cloud, "staging_location"),
        *validator.validate_num_workers(options.view_as(WorkerOptions)),
    ]
    if errors:
        raise LaunchError("; ".join(error.split(" See ")[0] for error in errors))


def _environment(runner: str, s: dict[str, Any]) -> list[str]:
    """Where the Python SDK harness runs on a portable runner's task managers/executors."""
    if s.get("image") and s.get("worker_pool"):
        raise LaunchError("give --image (DOCKER) or --worker-pool (EXTERNAL), not both")
    if s.get("image"):
        return ["--environment_type=DOCKER", f"--environment_config={s['image']}"]
    if s.get("worker_pool"):
        pool = str(s["worker_pool"])
        if ":" not in pool:
            pool = f"{pool}:{DEFAULT_WORKER_POOL_PORT}"
        return ["--environment_type=EXTERNAL", f"--environment_config={pool}"]
    raise LaunchError(
        f"{runner} needs --image (each task manager runs the worker image with Docker) "
        f"or --worker-pool HOST:PORT (an SDK harness started with --worker_pool beside each task manager)"
    )


def _job_endpoint(runner: str, s: dict[str, Any], master_key: str) -> list[str] | None:
    """PortableRunner against a job server already running on the cluster, if one was given."""
    if not s.get("job_endpoint"):
        return None
    if s.get(master_key):
        raise LaunchError(f"give --job-endpoint or --{master_key.replace('_', '-')}, not both")
    return ["--runner=PortableRunner", f"--job_endpoint={s['job_endpoint']}"]


def _flink(s: dict[str, Any]) -> list[str]:
    from apache_beam.options.pipeline_options import FlinkRunnerOptions

    args = _job_endpoint("flink", s, "flink_master")
    if args is None:
        if not s.get("flink_master"):
            raise LaunchError(
                "flink needs --flink-master HOST:8081 (the JobManager's REST address) or --job-endpoint"
            )
        versions = FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
        if s.get("flink_version") not in versions:
            raise LaunchError(
                f"flink needs --flink-version matching the cluster, one of {', '.join(versions)}"
            )
        args = [
            "--runner=FlinkRunner",
            f"--flink_master={s['flink_master']}",
            f"--flink_version={s['flink_version']}",
        ]
        if s.get("uber_jar"):
            args.append("--flink_submit_uber_jar")
    args += _environment("flink", s)
    if s.get("parallelism"):
        args.append(f"--parallelism={int(s['parallelism'])}")
    return args


def _spark(s: dict[str, Any]) -> list[str]:
    args = _job_endpoint("spark", s, "spark_master_url")
    if args is None:
        master = str(s.get("spark_master_url") or "")
        if not master.startswith("spark://"):
            raise LaunchError("spark needs --spark-master-url spark://HOST:7077 or --job-endpoint HOST:8099")
        args = ["--runner=SparkRunner", f"--spark_master_url={master}"]
        if s.get("spark_rest_url"):
            # Upload one jar to the master's REST port instead of running a job server here.
            args += ["--spark_submit_uber_jar", f"--spark_rest_url={s['spark_rest_url']}"]
    return args + _environment("spark", s)


_BUILDERS: dict[str, tuple[Callable[[dict[str, Any]], list[str]], set[str]]] = {
    "local": (_local, {"workers"}),
    "dataflow": (_dataflow, {
        "project", "region", "temp_location", "staging_location", "job_name", "num_workers",
        "max_num_workers", "autoscaling_algorithm", "machine_type", "disk_size_gb", "image", "setup_file",
        "harness_threads", "experiments", "service_options", "subnetwork", "no_public_ips", "service_account",
    }),
    "flink": (_flink, {"flink_master", "flink_version", "job_endpoint", "uber_jar", "image", "worker_pool", "parallelism"}),
    "spark": (_spark, {"spark_master_url", "spark_rest_url", "job_endpoint", "image", "worker_pool"}),
}  # fmt: skip


def unknown_flags(args: list[str]) -> list[str]:
    """Flags in ``args`` that neither Beam nor the curation job's options define, each with a hint."""
    from apache_beam.options.pipeline_options import PipelineOptions

    import pipelines.options  # noqa: F401  (registers CurationOptions with PipelineOptions)

    options = PipelineOptions(args)
    known = options.get_all_options()
    every = options.get_all_options(retain_unknown_options=True)
    problems = []
    for name in sorted(set(every) - set(known)):
        close = difflib.get_close_matches(name, known, n=1)
        problems.append(f"--{name}" + (f" (did you mean --{close[0]}?)" if close else ""))
    return problems


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", CURATE_MODULE, *args]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deploy/launch.py",
        description="Launch the curation job on Dataflow, Flink, Spark or locally. "
        "Arguments after -- go to pipelines.curate unchanged.",
    )
    runners = parser.add_subparsers(dest="runner", required=True)
    subs = {name: runners.add_parser(name, help=f"run on {name}") for name in _BUILDERS}
    for sub in subs.values():
        sub.add_argument("--input", required=True, help="candidate pool (a path, glob or URL)")
        sub.add_argument("--output", required=True, help="dataset directory to write")
        sub.add_argument(
            "--allowlist", required=True, help="query allowlist (JSON list or one entry per line)"
        )
        sub.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    subs["local"].add_argument("--workers", type=int, default=1, help="processes of the local runner")
    df = subs["dataflow"]
    for flag in ("--project", "--region", "--temp-location", "--staging-location", "--job-name",
                 "--image", "--setup-file", "--subnetwork", "--service-account"):  # fmt: skip
        df.add_argument(flag)
    for key, default in DATAFLOW_DEFAULTS.items():
        df.add_argument(f"--{key.replace('_', '-')}", type=type(default), help=f"default {default}")
    df.add_argument(
        "--harness-threads", type=int, help="threads per SDK process (the fetch stage waits on I/O)"
    )
    df.add_argument("--experiment", dest="experiments", action="append", default=[])
    df.add_argument("--service-option", dest="service_options", action="append", default=[])
    df.add_argument("--no-public-ips", action="store_true", help="workers need Cloud NAT to fetch images")
    for name in ("flink", "spark"):
        sub = subs[name]
        sub.add_argument("--image", help="worker image, started with Docker by each task manager/executor")
        sub.add_argument("--worker-pool", help="HOST[:PORT] of an SDK harness sidecar (EXTERNAL environment)")
        sub.add_argument("--job-endpoint", help="HOST:PORT of a Beam job server already running")
    subs["flink"].add_argument("--flink-master", help="JobManager REST address HOST:8081")
    subs["flink"].add_argument("--flink-version", help="the cluster's Flink version, e.g. 1.20")
    subs["flink"].add_argument(
        "--uber-jar", action="store_true", help="submit one jar instead of a job server"
    )
    subs["flink"].add_argument("--parallelism", type=int)
    subs["spark"].add_argument("--spark-master-url", help="spark://HOST:7077")
    subs["spark"].add_argument("--spark-rest-url", help="http://HOST:6066: submit one jar through REST")
    return parser


def main(argv: list[str] | None = None) -> int:
    # Beam warns at import when the optional GCP extras are absent: noise around a one-line error.
    logging.getLogger().addFilter(lambda record: "apitools not found" not in record.getMessage())
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = _parser()
    ns = vars(parser.parse_args(own))
    runner, dry_run = ns.pop("runner"), ns.pop("dry_run")
    try:
        args = build_args(runner, extra=extra, **ns)
        problems = unknown_flags(args)
        if problems:
            raise LaunchError(f"unknown option {', '.join(problems)}")
    except LaunchError as err:
        parser.exit(2, f"launch: error: {err}\n")
    cmd = command(args)
    print(shlex.join(cmd), flush=True)
    if dry_run:
        return 0
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env).returncode


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))  # run as a script: the job's packages live at the repo root
    sys.exit(main())
