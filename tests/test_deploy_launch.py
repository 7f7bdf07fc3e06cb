"""deploy/launch.py: the runner options it builds parse as Beam's own, and user mistakes get one-line errors."""

from __future__ import annotations

import shlex

import pytest
from apache_beam.options.pipeline_options import (
    DebugOptions,
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    SetupOptions,
    SparkRunnerOptions,
    StandardOptions,
    WorkerOptions,
)

from deploy import launch
from deploy.launch import LaunchError, build_args
from pipelines.options import CurationOptions

DATAFLOW = dict(
    input="gs://curation-pool/cc/*.parquet",
    output="gs://curation-out/run1",
    allowlist="gs://curation-pool/metadata.json",
    project="my-project",
    region="us-central1",
    temp_location="gs://curation-tmp/beam",
)
FLINK = dict(
    input="s3://pool/cc/*.parquet",
    output="s3://out/run1",
    allowlist="s3://pool/metadata.json",
    flink_master="jobmanager:8081",
    flink_version="1.20",
)
SPARK = dict(
    input="hdfs://nn/pool/*.parquet",
    output="hdfs://nn/out/run1",
    allowlist="hdfs://nn/pool/metadata.json",
    spark_master_url="spark://master:7077",
)


def beam_options(args: list[str]) -> PipelineOptions:
    """The arguments as the job sees them; every flag must be one Beam or CurationOptions defines."""
    assert launch.unknown_flags(args) == []
    return PipelineOptions(args)


def test_dataflow_defaults_parse_as_beam_options():
    args = build_args("dataflow", **DATAFLOW)
    options = beam_options(args)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region) == ("my-project", "us-central1")
    assert cloud.temp_location == "gs://curation-tmp/beam"
    assert cloud.staging_location == "gs://curation-tmp/beam/staging"
    workers = options.view_as(WorkerOptions)
    assert (workers.num_workers, workers.max_num_workers) == (10, 100)
    assert workers.autoscaling_algorithm == "THROUGHPUT_BASED"
    assert (workers.machine_type, workers.disk_size_gb) == ("n2-standard-8", 50)
    assert options.view_as(DebugOptions).experiments == ["use_runner_v2"]
    # Without an image the workers install the project from setup.py at start-up.
    assert options.view_as(SetupOptions).setup_file == str(launch.REPO_ROOT / "setup.py")
    assert args[:3] == [
        "--input=gs://curation-pool/cc/*.parquet",
        "--output=gs://curation-out/run1",
        "--allowlist=gs://curation-pool/metadata.json",
    ]
    # The worker image carries textblob's tagger only: the launcher must not pin nltk's perceptron.
    assert options.view_as(CurationOptions).synset_tagger == "pattern"


def test_dataflow_with_image_and_tuning():
    args = build_args(
        "dataflow",
        **DATAFLOW,
        image="us-docker.pkg.dev/my-project/curation/worker:2.77.0",
        machine_type="n2-highmem-8",
        num_workers=50,
        max_num_workers=400,
        harness_threads=32,
        experiments=["no_use_multiple_sdk_containers", "use_runner_v2"],
        service_options=["enable_google_cloud_profiler"],
        job_name="curate-cc-2024",
        no_public_ips=True,
        subnetwork="regions/us-central1/subnetworks/curation",
        extra=["--seed=7"],
    )
    options = beam_options(args)
    worker = options.view_as(WorkerOptions)
    assert worker.sdk_container_image == "us-docker.pkg.dev/my-project/curation/worker:2.77.0"
    assert options.view_as(SetupOptions).sdk_location == "container"
    assert options.view_as(SetupOptions).setup_file is None
    assert (worker.num_workers, worker.max_num_workers, worker.machine_type) == (50, 400, "n2-highmem-8")
    assert worker.use_public_ips is False
    debug = options.view_as(DebugOptions)
    assert debug.number_of_worker_harness_threads == 32
    assert debug.experiments == ["use_runner_v2", "no_use_multiple_sdk_containers"]
    cloud = options.view_as(GoogleCloudOptions)
    assert cloud.dataflow_service_options == ["enable_google_cloud_profiler"]
    assert cloud.job_name == "curate-cc-2024"
    assert args[-2:] == ["--seed=7", "--synset_tagger=pattern"]  # pass-through arguments last, unchanged
    assert options.view_as(CurationOptions).seed == 7


def test_flink_docker_environment_and_job_server_variants():
    options = beam_options(build_args("flink", **FLINK, image="registry/worker:1", parallelism=128))
    assert options.view_as(StandardOptions).runner == "FlinkRunner"
    flink = options.view_as(FlinkRunnerOptions)
    assert (flink.flink_master, flink.flink_version, flink.parallelism) == ("jobmanager:8081", "1.20", 128)
    portable = options.view_as(PortableOptions)
    assert (portable.environment_type, portable.environment_config) == ("DOCKER", "registry/worker:1")

    settings = {k: v for k, v in FLINK.items() if k not in ("flink_master", "flink_version")}
    options = beam_options(
        build_args("flink", **settings, job_endpoint="beam-job-server:8099", worker_pool="localhost")
    )
    assert options.view_as(StandardOptions).runner == "PortableRunner"
    portable = options.view_as(PortableOptions)
    assert portable.job_endpoint == "beam-job-server:8099"
    assert (portable.environment_type, portable.environment_config) == ("EXTERNAL", "localhost:50000")


def test_spark_master_and_rest_submission():
    args = build_args("spark", **SPARK, image="registry/worker:1", spark_rest_url="http://master:6066")
    options = beam_options(args)
    assert options.view_as(StandardOptions).runner == "SparkRunner"
    spark = options.view_as(SparkRunnerOptions)
    assert spark.spark_master_url == "spark://master:7077"
    assert spark.spark_submit_uber_jar and spark.spark_rest_url == "http://master:6066"


def test_local_runner_multiprocessing():
    args = build_args("local", input="pool.parquet", output="out/curated", allowlist="allow.json", workers=2)
    assert args == [
        "--input=pool.parquet",
        "--output=out/curated",
        "--allowlist=allow.json",
        "--runner=FnApiRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ]
    assert launch.unknown_flags(args) == []


def test_misspelt_flags_are_named_with_a_suggestion():
    args = build_args("dataflow", **DATAFLOW, extra=["--per_query_capp=500", "--max_num_worker=3"])
    assert launch.unknown_flags(args) == [
        "--max_num_worker (did you mean --max_num_workers?)",
        "--per_query_capp (did you mean --per_query_cap?)",
    ]


@pytest.mark.parametrize(
    ("runner", "settings", "message"),
    [
        ("dataflow", {**DATAFLOW, "project": None}, "dataflow needs --project"),
        ("dataflow", {**DATAFLOW, "region": None}, "dataflow needs --region"),
        (
            "dataflow",
            {**DATAFLOW, "output": "/home/me/curated"},
            "--output /home/me/curated is not on a shared",
        ),
        ("dataflow", {**DATAFLOW, "temp_location": "/tmp/beam"}, "Invalid GCS path (/tmp/beam)"),
        ("dataflow", {**DATAFLOW, "project": "My Project"}, "Invalid Project ID (My Project)"),
        ("dataflow", {**DATAFLOW, "job_name": "Curate_1"}, "Invalid job_name (Curate_1)"),
        (
            "dataflow",
            {**DATAFLOW, "num_workers": 500},
            "num_workers (500) cannot exceed max_num_workers (100)",
        ),
        ("dataflow", {**DATAFLOW, "image": "w:1", "setup_file": "setup.py"}, "give --image or --setup-file"),
        ("dataflow", {**DATAFLOW, "autoscaling_algorithm": "fast"}, "THROUGHPUT_BASED or NONE"),
        ("dataflow", {**DATAFLOW, "flink_master": "x"}, "dataflow does not take flink_master"),
        ("flink", {**FLINK, "flink_master": None, "image": "w:1"}, "flink needs --flink-master"),
        ("flink", {**FLINK, "flink_version": "1.11", "image": "w:1"}, "--flink-version matching the cluster"),
        ("flink", {**FLINK}, "flink needs --image"),
        ("flink", {**FLINK, "image": "w:1", "worker_pool": "h:50000"}, "not both"),
        (
            "flink",
            {**FLINK, "input": "data/pool.parquet", "image": "w:1"},
            "--input data/pool.parquet is not on",
        ),
        ("spark", {**SPARK, "spark_master_url": "yarn", "image": "w:1"}, "spark://HOST:7077"),
        (
            "spark",
            {**SPARK, "job_endpoint": "js:8099", "image": "w:1"},
            "--job-endpoint or --spark-master-url",
        ),
        ("flink", {**FLINK, "allowlist": "allow.json", "image": "w:1"}, "--allowlist allow.json is not on"),
        (
            "spark",
            {**SPARK, "image": "w:1", "extra": ["--eval_blocklist", "/data/eval.json"]},
            "--eval_blocklist",
        ),
        ("local", {"input": "a", "output": None, "allowlist": "l"}, "set --output"),
        ("local", {"input": "a", "output": "b"}, "set --allowlist"),
        ("prism", {"input": "a", "output": "b"}, "unknown runner 'prism'"),
    ],
)
def test_mistakes_give_one_line_errors(runner, settings, message):
    with pytest.raises(LaunchError) as error:
        build_args(runner, **settings)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_cli_dry_run_prints_the_exact_command(capsys):
    argv = ["dataflow", "--project", "my-project", "--region", "europe-west4", "--temp-location",
            "gs://curation-tmp/beam", "--input", "gs://curation-pool/a.parquet", "--output", "gs://curation-out/r",
            "--allowlist", "gs://curation-pool/metadata.json",
            "--image", "europe-docker.pkg.dev/p/c/worker:1", "--dry-run"]  # fmt: skip
    assert launch.main([*argv, "--", "--per_query_cap=5000"]) == 0
    printed = capsys.readouterr().out.strip()
    expected = launch.command(build_args(
        "dataflow", project="my-project", region="europe-west4", temp_location="gs://curation-tmp/beam",
        input="gs://curation-pool/a.parquet", output="gs://curation-out/r", image="europe-docker.pkg.dev/p/c/worker:1",
        allowlist="gs://curation-pool/metadata.json", extra=["--per_query_cap=5000"],
    ))  # fmt: skip
    assert shlex.split(printed) == expected
    assert expected[1:3] == ["-m", "pipelines.curate"]


def test_cli_mistake_exits_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        launch.main(["flink", "--input", "s3://a/b", "--output", "out/local", "--allowlist", "s3://a/l.json",
                     "--flink-master", "jm:8081"])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("launch: error: --output out/local is not on a shared filesystem")
    assert "\n" not in err


def test_cli_typo_in_pass_through_stops_before_the_job(capsys):
    with pytest.raises(SystemExit) as exit_info:
        launch.main(
            ["local", "--input", "a.jsonl", "--output", "out", "--allowlist", "l.json", "--", "--sed=3"]
        )
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "launch: error: unknown option --sed (did you mean --seed?)"


def test_cli_runs_the_job_and_returns_its_status(tmp_path, capfd):
    """Without --dry-run the printed command really runs: here the job itself rejects a missing input."""
    missing = tmp_path / "no-such-pool.jsonl"
    (tmp_path / "allow.json").write_text('["cat"]')
    argv = [
        "local",
        "--input",
        str(missing),
        "--output",
        str(tmp_path / "out"),
        "--allowlist",
        str(tmp_path / "allow.json"),
    ]
    assert launch.main(argv) == 2
    out, err = capfd.readouterr()
    assert shlex.split(out.strip())[1:3] == ["-m", "pipelines.curate"]
    assert err.strip().splitlines()[-1].startswith("curate: error:")
    assert str(missing) in err
