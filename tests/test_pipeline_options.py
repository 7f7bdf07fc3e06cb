"""CurationOptions: paper defaults, Beam flag pass-through, and one-line errors before any pipeline runs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.localfilesystem import LocalFileSystem
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from filters.eval_blocklist import build_eval_blocklist
from pipelines.job import prepare
from pipelines.options import CurationOptions, OptionError, check_filesystem, resolve
from pipelines.output_dir import check_output, remove_previous
from tests.image_fixtures import photo_jpeg

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "pool.jsonl").write_text('{"url": "http://a/x.jpg", "caption": "a dog on the beach"}\n')
    (tmp_path / "allow.json").write_text(json.dumps(["dog"]))
    return {"pool": tmp_path / "pool.jsonl", "allowlist": tmp_path / "allow.json", "out": tmp_path / "out"}


def args(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        f"--input={files['pool']}",
        f"--allowlist={files['allowlist']}",
        f"--output={files['out']}",
        *extra,
    ]


def test_defaults_come_from_the_papers(files: dict[str, Path]) -> None:
    config, beam_args = resolve(args(files))
    assert (config.text.min_words, config.text.max_words, config.text.max_images_per_text) == (3, 20, 10)
    assert (config.per_query_cap, config.balance, config.pre_download_cap) == (20_000, "exact", 40_000)
    assert (config.image.min_side, config.image.max_aspect) == (200, 3.0)
    assert (config.dedup.max_alt_texts, config.dedup.radius, config.dedup.max_group) == (1000, 6, 1000)
    assert config.dedup.mode == "near" and resolve(args(files, "--dedup=exact"))[0].dedup.mode == "exact"
    assert (config.languages, config.drop_explicit_text, config.drop_nsfw_images) == ((), False, False)
    assert resolve(args(files, "--drop_nsfw_images"))[0].drop_nsfw_images
    assert resolve(args(files, "--languages=EN, de"))[0].languages == ("de", "en")
    assert (config.v_tau, config.shard_size, config.seed) == (500, 10_000, 0)
    assert config.fetches and [unit.format for unit in config.inputs] == ["jsonl"]
    assert config.labeler.tagger in ("perceptron", "pattern")  # "auto" is pinned at launch
    assert beam_args == []
    manifest = config.manifest()
    assert "output" not in manifest and manifest["text"]["min_words"] == 3
    json.dumps(manifest)


def test_beam_flags_pass_through_and_the_default_runner_is_in_process(files: dict[str, Path]) -> None:
    _, options = prepare(args(files, "--direct_num_workers=2", "--direct_running_mode=multi_processing"))
    assert options.view_as(StandardOptions).runner == "FnApiRunner"
    assert options.get_all_options()["direct_num_workers"] == 2
    _, options = prepare(args(files, "--runner=DirectRunner"))
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    assert PipelineOptions(["--per_query_cap=7"]).view_as(CurationOptions).per_query_cap == 7


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--min_words=5", "--max_words=3"], "min_words <= max_words"),
        (["--phash_radius=40"], "the pHash radius must be in 0..24"),
        (["--dedup_max_group=1"], "max_group must be at least 2"),
        (["--dedup=fuzzy"], "argument --dedup: invalid choice: 'fuzzy'"),
        (["--languages=en,1x"], "--languages: '1x' is not a language code"),
        (["--per_query_cap=0"], "--per_query_cap must be at least 1"),
        (["--seed=abc"], "argument --seed: invalid int value: 'abc'"),
        (["--balance=random"], "argument --balance: invalid choice: 'random'"),
        (["--max_aspect_ratio=0.5"], "max_aspect >= 1"),
        (["--fetch_retries=99"], "retries must be between 0 and"),
        (["--rare_tokens=file"], "--rare_tokens=file needs --token_frequencies PATH"),
        (
            ["--rare_tokens=off", "--token_frequencies=/t.json"],
            "read only with --rare_tokens=file, but the mode is off",
        ),
        (["--recipe=coyo", "--token_frequencies=/t.json"], "the mode is off (set by --recipe coyo)"),
        (["--token_frequencies=/nope/table.json"], "--token_frequencies file not found: /nope/table.json"),
        (["--eval_blocklist=/nope/b.json"], "--eval_blocklist file not found: /nope/b.json"),
        (["--shard_max_bytes=10"], "--shard_max_bytes must be at least 1 MiB"),
    ],
)
def test_bad_values_are_one_line_errors(files: dict[str, Path], extra: list[str], message: str) -> None:
    with pytest.raises(OptionError) as error:
        resolve(args(files, *extra))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_missing_or_malformed_allowlist_stops_the_launch(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="--allowlist file not found"):
        resolve([f"--input={files['pool']}", "--allowlist=/nope.json", f"--output={files['out']}"])
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    with pytest.raises(OptionError, match=r"--allowlist: .*invalid JSON"):
        resolve([f"--input={files['pool']}", f"--allowlist={broken}", f"--output={files['out']}"])


def test_mixed_inputs_and_unknown_runners_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "shard.tar").write_bytes(b"")
    with pytest.raises(OptionError, match="mixes WebDataset shards and candidate tables"):
        resolve([*args(files), f"--input={files['pool']},{tmp_path / 'shard.tar'}"])
    with pytest.raises(OptionError, match="--runner=NoSuchRunner"):
        prepare(args(files, "--runner=NoSuchRunner"))


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.curate", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_wrong_input_is_one_line_and_exit_code_2() -> None:
    result = run_cli("--input", "/nope")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["curate: error: --input matched no files: /nope"]
    assert result.stdout == ""


def test_cli_missing_allowlist_is_one_line_and_exit_code_2(files: dict[str, Path]) -> None:
    result = run_cli(f"--input={files['pool']}", "--allowlist=/nope/allow.json", f"--output={files['out']}")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["curate: error: --allowlist file not found: /nope/allow.json"]
    assert not files["out"].exists()


def missing(module: str) -> bool:
    """Whether ``module`` cannot be imported here (the extras these tests are about are not installed)."""
    try:
        importlib.import_module(module)
    except Exception:
        return True
    return False


def test_cli_gs_input_without_the_gcp_extra_is_one_line_and_exit_code_2(files: dict[str, Path]) -> None:
    if not missing("google.cloud.storage"):
        pytest.skip("the gcp extra is installed here: gs:// paths are readable")
    result = run_cli("--input", "gs://bucket/x.parquet", f"--allowlist={files['allowlist']}")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "curate: error: cannot read gs://bucket/x.parquet: install the gcp extra "
        "(pip install 'alt-text-curation[gcp]') or use a local path"
    ]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("flag", "path", "module", "message"),
    [
        ("--input", "hdfs://namenode/pool/*.parquet", "hdfs",
         "cannot read hdfs://namenode/pool/*.parquet: install Beam's hadoop extra "
         "(pip install 'apache-beam[hadoop]==2.77.0') or use a local path"),
        ("--input", "s3://bucket/pool.parquet", "boto3",
         "cannot read s3://bucket/pool.parquet: install the aws extra "
         "(pip install 'alt-text-curation[aws]') or use a local path"),
        ("--input", "azfs://account/container/pool.parquet", "azure.storage.blob",
         "cannot read azfs://account/container/pool.parquet: install Beam's azure extra"),
        ("--output", "gs://bucket/dataset", "google.cloud.storage",
         "cannot write gs://bucket/dataset: install the gcp extra"),
        ("--allowlist", "s3://bucket/allow.json", "boto3", "cannot read s3://bucket/allow.json: install the aws"),
        ("--input", "ftp://host/pool.parquet", "",
         "cannot read ftp://host/pool.parquet: no filesystem for ftp://; use a local path, gs://, s3://"),
    ],
)  # fmt: skip
def test_a_store_without_its_extra_is_a_one_line_error(
    files: dict[str, Path], flag: str, path: str, module: str, message: str
) -> None:
    if module and not missing(module):
        pytest.skip(f"{module} is installed here: {path} is reachable")
    with pytest.raises(OptionError) as error:
        resolve([*args(files), f"{flag}={path}"])
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


class DeniedFileSystem(LocalFileSystem):
    """A store that is installed but refuses the caller, as a bucket without read permission does."""

    @classmethod
    def scheme(cls) -> str:
        return "denied"

    def match(self, patterns: list[str], limits: list[int] | None = None) -> list:
        refusal = PermissionError("403 Forbidden: the caller lacks storage.objects.list on the bucket")
        raise BeamIOError("Match operation failed", {patterns[0]: refusal})


def test_a_store_that_refuses_the_caller_is_a_one_line_error(files: dict[str, Path]) -> None:
    check_filesystem("denied://bucket/pool.parquet", "read")  # the filesystem itself is installed
    with pytest.raises(OptionError) as error:
        resolve([*args(files), "--input=denied://bucket/pool.parquet"])
    assert str(error.value) == "--input: 403 Forbidden: the caller lacks storage.objects.list on the bucket"


def test_a_blocklist_hashed_at_another_image_size_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "coffee.jpg").write_bytes(photo_jpeg())
    build_eval_blocklist([tmp_path / "eval"]).save(tmp_path / "blocklist.json")
    config, _ = resolve(args(files, f"--eval_blocklist={tmp_path / 'blocklist.json'}"))
    assert config.eval_blocklist == str(tmp_path / "blocklist.json")
    with pytest.raises(OptionError, match="hashed at output side 256 but --image_size is 384"):
        resolve(args(files, f"--eval_blocklist={tmp_path / 'blocklist.json'}", "--image_size=384"))
    config, _ = resolve(args(files, f"--eval_blocklist={tmp_path / 'eval'}", "--image_size=384"))
    assert config.eval_blocklist == str(tmp_path / "eval")  # a folder is hashed at launch, at the run's size


def test_overwrite_deletes_exactly_the_files_the_previous_manifest_lists(tmp_path: Path) -> None:
    listed = ["00000.tar", "00001.tar", "sizes.json", "stats.json", "rejects/rejects-00000-of-00001.parquet"]
    for name in [*listed, "notes.txt", "00007.tar", "rejects/mine.parquet", "../outside.json"]:
        (tmp_path / "out" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / name).write_text("old")
    manifest = {
        "shards": [{"name": "00000.tar"}, {"name": "00001.tar"}, {"name": "../outside.json"}],
        "files": {"sizes": "sizes.json", "stats": "stats.json", "rejects": "rejects/", "evil": "../x"},
    }
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(manifest))

    def fail(message: str) -> None:
        raise OptionError(message)

    out = str(tmp_path / "out")
    with pytest.raises(OptionError, match="already holds a dataset"):
        check_output(out, [], False, fail)
    stale = check_output(out, [], True, fail)
    assert sorted(p.removeprefix(out + "/") for p in stale) == sorted([*listed, "manifest.json"])
    remove_previous(stale, out)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["out/00007.tar", "out/notes.txt", "out/rejects/mine.parquet", "outside.json"]


def test_every_option_has_help_text_and_help_shows_its_default() -> None:
    from pipelines.options import parser

    own = parser()
    text = " ".join(own.format_help().split())
    for action in own._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, f"{action.option_strings[0]} has no help text"
        if action.default not in (None, False):
            assert f"(default: {action.default})" in text, action.option_strings[0]
