"""The full curation graph, built with the Flink options deploy/launch.py produces, survives what a
portable runner (Flink, Spark) does with it: Runner API proto round trip, and the optimised proto the
PortableRunner submits to the job server (only primitives those runners translate, all in the worker image).

Nothing runs: the graph is built on small local inputs and converted, as a submission would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import apache_beam as beam
import pytest
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.portability.portable_runner import PortableRunner

from deploy.launch import JOB_FLAGS, build_args

WORKER_IMAGE = "registry.example/curation-worker:2.77.0"
# Every stage composite of pipelines/job.py, in graph order.
STAGES = [
    "ReadCandidates", "CleanText", "DropSharedAltTexts", "MatchQueries", "BalanceBeforeDownload", "FetchImages",
    "CheckAndHashImages", "SplitPayloads", "Deduplicate", "BalanceQueries", "LabelSynsets", "BuildVocabulary",
    "TrainTokenizer", "WriteShards", "WriteRejects", "WriteFunnel", "WriteQueryCounts", "WriteManifest",
]  # fmt: skip
# What the Flink and Spark portable translators accept after the PortableRunner's default pre-optimisation.
RUNNER_PRIMITIVES = {
    common_urns.primitives.IMPULSE.urn,
    common_urns.primitives.PAR_DO.urn,
    common_urns.primitives.GROUP_BY_KEY.urn,
    common_urns.primitives.FLATTEN.urn,
    common_urns.primitives.ASSIGN_WINDOWS.urn,
    common_urns.composites.RESHUFFLE.urn,
    common_urns.combine_components.COMBINE_PER_KEY_PRECOMBINE.urn,
    common_urns.combine_components.COMBINE_PER_KEY_MERGE_ACCUMULATORS.urn,
    common_urns.combine_components.COMBINE_PER_KEY_EXTRACT_OUTPUTS.urn,
}


@pytest.fixture(scope="module")
def flink_pipeline(tmp_path_factory) -> Iterator[tuple[beam.Pipeline, object]]:
    from pipelines.job import build, prepare

    data = tmp_path_factory.mktemp("portable")
    (data / "pool.jsonl").write_text(
        json.dumps({"url": "https://images.example/cat.jpg", "caption": "a tabby cat asleep on a sofa"})
        + "\n"
    )
    (data / "allow.json").write_text(json.dumps(["cat", "sofa"]))
    remote = build_args(
        "flink",
        input="s3://pool/cc/*.jsonl",
        output="s3://out/run1",
        allowlist="s3://pool/allow.json",
        flink_master="jobmanager:8081",
        flink_version="1.20",
        image=WORKER_IMAGE,
        parallelism=64,
    )
    # The launcher's runner flags with local job paths: nothing here can list s3://.
    runner_flags = [arg for arg in remote if arg.partition("=")[0] not in JOB_FLAGS.values()]
    local = [
        f"--input={data / 'pool.jsonl'}",
        f"--output={data / 'out'}",
        f"--allowlist={data / 'allow.json'}",
    ]
    config, options = prepare(local + runner_flags)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, config)
    yield pipeline, options


def composites(proto: beam_runner_api_pb2.Pipeline) -> dict[str, list[str]]:
    """Every composite transform by name, with the names of its parts in order."""
    transforms = proto.components.transforms
    return {
        t.unique_name: [transforms[part].unique_name for part in t.subtransforms]
        for t in transforms.values()
        if t.subtransforms
    }


def test_round_trip_keeps_every_composite(flink_pipeline):
    pipeline, options = flink_pipeline
    proto = pipeline.to_runner_api()
    before = composites(proto)
    top = before[proto.components.transforms[proto.root_transform_ids[0]].unique_name]
    assert [name for name in top if name in STAGES] == STAGES
    again = beam.Pipeline.from_runner_api(proto, pipeline.runner, options).to_runner_api()
    assert composites(again) == before
    names = {t.unique_name for t in proto.components.transforms.values()}
    assert names == {t.unique_name for t in again.components.transforms.values()}


def test_submitted_proto_uses_runner_primitives_in_the_worker_image(flink_pipeline):
    pipeline, options = flink_pipeline
    submitted = PortableRunner.get_proto_pipeline(pipeline, options)
    transforms = submitted.components.transforms.values()
    leaves = [t for t in transforms if not t.subtransforms]
    assert {t.spec.urn for t in leaves} <= RUNNER_PRIMITIVES
    (environment,) = submitted.components.environments.values()
    assert environment.urn == common_urns.environments.DOCKER.urn
    assert beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image == WORKER_IMAGE
    pardos = [t for t in leaves if t.spec.urn == common_urns.primitives.PAR_DO.urn]
    assert pardos and all(t.environment_id for t in pardos)
    # Stage composites stay visible in the submitted graph (names in the Flink/Spark UI and metrics).
    assert set(STAGES) <= {t.unique_name for t in transforms}
