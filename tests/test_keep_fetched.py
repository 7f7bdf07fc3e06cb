"""Fetch once, curate many (--keep_fetched) and --key_column, on the real job over real HTTP (127.0.0.1):
kept shards in img2dataset's layout, a re-run after a "crash" fetches only the file that was not finished
and writes the same dataset byte for byte, and the kept shards re-curate with no request at all."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.curate import main
from testing.web_server import DemoServer
from tests.hostile_server import distinct_jpeg

pytestmark = pytest.mark.slow

QUERIES = ["ball", "house", "tree"]
ROWS = {  # file → rows (uid, image name or a path, caption)
    "part-0.csv": [
        ("u00", "a0", "a red ball on the green grass"),
        ("u01", "a1", "a small house near the tall trees"),
        ("u02", "/404", "a ball that is gone from the web"),
        (
            "u01",
            "a3",
            "another house with the same uid",
        ),  # key_duplicate: the row with the smaller row id keeps u01
        ("u.04", "a4", "a tree whose uid has a dot in it"),  # key_invalid
    ],
    "part-1.csv": [
        ("u10", "b0", "a blue ball under a big tree"),
        ("u11", "b1", "an old house in the snow"),
        ("u12", "b2", "a tree in the autumn light"),
    ],
}
OPTIONS = ["--rare_tokens=off", "--tokenizer_vocab_size=0", "--no_report", "--v_tau=1", "--progress=off",
           "--allowed_networks=127.0.0.1/32", "--fetch_retries=0", "--min_words=3", "--key_column=uid"]  # fmt: skip


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("kept")
    images = root / "images"
    images.mkdir()
    with DemoServer(images) as server:
        (root / "pool").mkdir()
        for name, rows in ROWS.items():
            with open(root / "pool" / name, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["uid", "url", "caption", "lang"])
                for uid, image, caption in rows:
                    if not image.startswith("/"):
                        (images / f"{image}.jpg").write_bytes(distinct_jpeg(image))
                        image = f"/images/{image}.jpg"
                    writer.writerow([uid, server.url(image), caption, "en"])
        (root / "allowlist.json").write_text(json.dumps(QUERIES))
        yield root, server


def _curate(root: Path, output: str, *extra: str) -> None:
    argv = [
        f"--input={root / 'pool' / '*.csv'}",
        f"--allowlist={root / 'allowlist.json'}",
        f"--output={root / output}",
    ]
    assert main([*argv, *OPTIONS, *extra]) == 0


def _dataset_files(output: Path) -> dict[str, bytes]:
    names = [p.name for p in output.glob("*.tar")] + [
        "manifest.json",
        "sizes.json",
        "stats.json",
        "examples.json",
    ]
    return {name: (output / name).read_bytes() for name in sorted(names)}


def test_kept_shards_resume_and_recuration(pool) -> None:
    root, server = pool
    kept = root / "kept"
    before = server.total_hits()
    _curate(root, "first", f"--keep_fetched={kept}")
    assert server.total_hits() - before == 6  # 6 rows reach the fetch: a duplicate and a bad key do not

    # img2dataset's layout per input file; failures are in the parquet, not the tar.
    folder = kept / "part-0.csv"
    assert sorted(p.name for p in folder.iterdir()) == [
        "00000.parquet",
        "00000.tar",
        "00000_stats.json",
        "_fetched.json",
    ]
    rows = {r["key"]: r for r in pq.read_table(folder / "00000.parquet").to_pylist()}
    assert rows["u02"]["status"] == "failed_to_download" and rows["u02"]["reason"] == "http_error"
    assert {k for k, r in rows.items() if r["status"] == "success"} == {"u00", "u01"}
    stats = json.loads((folder / "00000_stats.json").read_text())
    assert (stats["count"], stats["successes"], stats["failed_to_download"]) == (3, 2, 1)

    # --key_column: the uids are the sample keys; the duplicate and the bad key are named rejects that
    # keep their carried columns, so they join back to the table.
    first = root / "first"
    rejects = {(r["key"], r["reason"]): r for r in pq.read_table(first / "rejects").to_pylist()}
    assert ("u01", "key_duplicate") in rejects and json.loads(rejects[("u01", "key_duplicate")]["extra"]) == {
        "lang": "en"
    }
    assert any(reason == "key_invalid" for _, reason in rejects)
    kept_keys = sorted(json.loads(line)["key"] for line in _sample_jsons(first))
    assert kept_keys == ["u00", "u01", "u10", "u11", "u12"]

    # A job that died before part-1.csv was kept: the re-run fetches only part-1's URLs.
    shutil.rmtree(kept / "part-1.csv")
    before = server.total_hits()
    _curate(root, "resumed", f"--keep_fetched={kept}")
    assert server.total_hits() - before == 3
    assert _dataset_files(root / "resumed") == _dataset_files(first)  # byte for byte the same dataset
    before = server.total_hits()
    _curate(root, "again", f"--keep_fetched={kept}")
    assert server.total_hits() == before  # everything kept now

    # Curate many: the kept shards are WebDataset input; no request is made.
    argv = [f"--input={kept}/*/*.tar", "--input_format=webdataset", f"--allowlist={root / 'allowlist.json'}",
            f"--output={root / 'recurated'}", *OPTIONS[:-1], "--key_column=key", "--per_query_cap=1"]  # fmt: skip
    assert main(argv) == 0
    assert server.total_hits() == before
    recurated = sorted(json.loads(line)["key"] for line in _sample_jsons(root / "recurated"))
    assert len(recurated) == 3 and set(recurated) <= set(kept_keys)  # one per query: ball, house, tree
    meta = json.loads(next(_sample_jsons(root / "recurated")))
    assert meta["extra"]["lang"] == "en"  # the carried columns came along


def _sample_jsons(output: Path):
    import tarfile

    for shard in sorted(output.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    yield tar.extractfile(member).read().decode()


def test_a_damaged_kept_folder_is_read_as_far_as_it_goes_and_never_fails(tmp_path: Path) -> None:
    import io
    import tarfile

    from pipelines.kept_fetched import _ReadKept

    folder = tmp_path / "part.csv"
    folder.mkdir()
    (folder / "00000.parquet").write_bytes(b"PAR1 not really parquet")
    with tarfile.open(folder / "00000.tar", "w") as tar:
        for name, data in (("k1.jpg", b"\xff\xd8x"), ("k1.json", b"{not json"), ("k2.jpg", b"\xff\xd8y"),
                           ("k2.json", json.dumps({"key": "k2"}).encode()), ("k3.json", b"[1, 2]")):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    found = list(_ReadKept(str(tmp_path), 1 << 20).process("part.csv"))
    assert found == [("k2", ("ok", b"\xff\xd8y", ""))]  # the damaged entries are fetched again instead
