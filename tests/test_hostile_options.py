"""User mistakes that used to run a job with defaults, print pages of usage, or delete the user's files:
each is now one line on stderr with exit code 2, before anything is read, run or deleted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.curate import main
from pipelines.job import prepare
from tests.hostile_checks import REPO


@pytest.fixture
def pool(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "pool.jsonl").write_text('{"url": "http://a/x.jpg", "caption": "a cat on a mat"}\n')
    (tmp_path / "allow.json").write_text(json.dumps(["cat"]))
    return {"pool": tmp_path / "pool.jsonl", "allowlist": tmp_path / "allow.json", "out": tmp_path / "out"}


def argv(pool: dict[str, Path], *extra: str, output: Path | None = None) -> list[str]:
    out = output if output is not None else pool["out"]
    return [f"--input={pool['pool']}", f"--allowlist={pool['allowlist']}", f"--output={out}", *extra]


def one_line_error(capsys: pytest.CaptureFixture, args: list[str]) -> str:
    assert main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("curate: error: "), lines[:5]
    return lines[0].removeprefix("curate: error: ")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--per_query_cpa=5", "unknown option --per_query_cpa (neither a curate option nor a Beam pipeline option); did you mean --per_query_cap?"),
        ("--eval_blocklst=/x", "unknown option --eval_blocklst (neither a curate option nor a Beam pipeline option); did you mean --eval_blocklist?"),
        ("--no_such_thing", "unknown option --no_such_thing (neither a curate option nor a Beam pipeline option); see curate --help"),
        ("--direct_num_workers=abc", "argument --direct_num_workers: invalid int value: 'abc'"),
        ("stray", "unexpected argument 'stray': every option is --name=value (see curate --help)"),
    ],
)  # fmt: skip
def test_misspelt_options_and_bad_beam_values_are_one_line_errors(
    pool: dict[str, Path], capsys: pytest.CaptureFixture, flag: str, message: str
) -> None:
    assert one_line_error(capsys, argv(pool, flag)) == message
    assert not pool["out"].exists()


def test_real_beam_and_runner_options_still_pass(pool: dict[str, Path]) -> None:
    _, options = prepare(
        argv(pool, "--direct_num_workers=2", "--direct_running_mode=multi_processing", "--experiments=a,b",
             "--project=my-project", "--temp_location=/tmp/x", "--flink_master=[auto]", "--sdk_location=container")
    )  # fmt: skip
    assert options.get_all_options()["direct_num_workers"] == 2


def test_missing_columns_are_found_before_the_run(
    pool: dict[str, Path], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    message = one_line_error(capsys, argv(pool, "--url_column=URL"))
    assert (
        message
        == "--url_column URL: pool.jsonl has no such column (it has: caption, url); pass --url_column=NAME"
    )
    table = tmp_path / "t.csv"
    table.write_bytes(b"\xef\xbb\xbfimage,alt\nhttp://a/x.jpg,a cat\n")
    message = one_line_error(capsys, [f"--input={table}", f"--allowlist={pool['allowlist']}", f"--output={pool['out']}", "--url_column=image"])  # fmt: skip
    assert (
        message
        == "--caption_column caption: t.csv has no such column (it has: alt, image); pass --caption_column=NAME"
    )
    assert not pool["out"].exists()


def test_an_output_that_is_a_file_is_one_line(
    pool: dict[str, Path], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert (
        one_line_error(capsys, argv(pool, output=afile))
        == f"--output {afile} is a file: name a folder for the dataset"
    )
    inside = afile / "dataset"
    assert (
        one_line_error(capsys, argv(pool, output=inside))
        == f"--output {inside}: {afile} is a file, so the folder cannot be made"
    )
    assert afile.read_text() == "mine"


def test_overwrite_never_deletes_the_users_inputs(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "00000.tar").write_bytes(b"the user's own shard")
    (shards / "stats.json").write_text("{}")
    (tmp_path / "allow.json").write_text(json.dumps(["cat"]))
    common = [
        f"--input={shards}/*.tar",
        f"--allowlist={tmp_path / 'allow.json'}",
        f"--output={shards}",
        "--overwrite",
    ]
    message = one_line_error(capsys, common)
    assert message.startswith(f"--input {shards}/00000.tar lies inside --output {shards}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stats.json").write_text("{}")  # this job's name for a file, but no manifest: not ours
    (elsewhere / "00003.tar").write_bytes(b"another shard")
    common[2] = f"--output={elsewhere}"
    message = one_line_error(capsys, common)
    assert "holds files this job writes (00003.tar, stats.json) but no manifest.json" in message
    assert sorted(p.name for p in shards.iterdir()) == ["00000.tar", "stats.json"]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["00003.tar", "stats.json"]


def _previous_dataset(out: Path) -> None:
    out.mkdir(parents=True)
    for name in ("00000.tar", "stats.json", "sizes.json"):
        (out / name).write_text("old")
    manifest = {"shards": [{"name": "00000.tar"}], "files": {"stats": "stats.json", "sizes": "sizes.json"}}
    (out / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "bad",
    [
        ["--runner=NoSuchRunner"],  # found by prepare()
        ["--eval_blocklist={tmp}/broken.tar"],  # found only when run() hashes the evaluation set
        ["--min_words=9", "--max_words=3"],  # found by resolve()
    ],
)
def test_nothing_is_deleted_before_every_option_is_valid(
    pool: dict[str, Path], capsys: pytest.CaptureFixture, tmp_path: Path, bad: list[str]
) -> None:
    (tmp_path / "broken.tar").write_bytes(b"not a tar at all" * 100)
    _previous_dataset(pool["out"])
    one_line_error(capsys, argv(pool, "--overwrite", *(flag.format(tmp=tmp_path) for flag in bad)))
    assert sorted(p.name for p in pool["out"].iterdir()) == [
        "00000.tar",
        "manifest.json",
        "sizes.json",
        "stats.json",
    ]


def test_file_urls_need_a_root(pool: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    message = one_line_error(capsys, argv(pool, "--allow_file_urls"))
    assert message == "--allow_file_urls needs --file_url_root DIR: the folder file:// URLs may read from"


def test_cli_help_states_the_time_bounds_and_exit_codes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.curate", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert "retries and waits included (default: 90.0)" in " ".join(result.stdout.split())
    unknown = subprocess.run(
        [sys.executable, "-m", "pipelines.curate", "--input=/x", "--per_query_cpa=3"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1
