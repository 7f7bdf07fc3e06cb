"""A candidate table (JSONL of file:// URLs) through the whole job, fetch stage included, no HTTP needed.

The HTTP end-to-end run lives with the fetch stage's tests; this one checks that table input takes the
pre-download balance and FetchImages, that their rejects are counted, and that bad images get reasons.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filters import balance
from filters.eval_blocklist import build_eval_blocklist
from pipelines.curate import main
from pipelines.read import sample_key
from tests.image_fixtures import HTML_BYTES, encode, skimage_photo
from tests.pipeline_fixtures import jpeg

pytestmark = pytest.mark.slow


def test_table_input_fetches_file_urls_and_conserves_every_row(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("astronaut", "chelsea", "rocket", "coffee"):
        (images / f"{name}.jpg").write_bytes(jpeg(skimage_photo(name)))
    (images / "page.jpg").write_bytes(HTML_BYTES)
    (images / "big.png").write_bytes(encode(skimage_photo("coffee").resize((700, 460)), "PNG"))
    rows = [
        ("astronaut.jpg", "an astronaut in a white space suit"),
        ("chelsea.jpg", "a tabby cat near a wall"),
        ("rocket.jpg", "a rocket cat on the launch pad"),
        ("coffee.jpg", "a cat next to a cup of coffee"),
        ("page.jpg", "a cat web page that is not an image"),
        ("missing.jpg", "a cat photo that does not exist"),
        ("big.png", "an astronaut drinking coffee from a cup"),
    ]
    pool = tmp_path / "pool.jsonl"
    pool.write_text(
        "".join(
            json.dumps({"url": (images / n).as_uri(), "caption": c, "source": "test"}) + "\n" for n, c in rows
        )
    )
    (tmp_path / "allow.json").write_text(json.dumps(["astronaut", "cat", "rocket"]))
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "rocket.png").write_bytes(encode(skimage_photo("rocket"), "PNG"))
    build_eval_blocklist([tmp_path / "eval"]).save(tmp_path / "blocklist.json")
    output = tmp_path / "out"
    argv = [f"--input={pool}", f"--allowlist={tmp_path / 'allow.json'}", f"--output={output}", "--allow_file_urls", f"--file_url_root={images}", f"--eval_blocklist={tmp_path / 'blocklist.json'}",
            "--per_query_cap=2", "--pre_download_margin=0.5", "--v_tau=1", "--no_report"]  # fmt: skip
    assert main(argv) == 0

    stats = json.loads((output / "stats.json").read_text())
    assert [row["stage"] for row in stats["stages"]] == [
        "read", "text", "caption", "shared_alt_text", "match", "balance_pre_download", "fetch", "image", "dedup", "balance",
    ]  # fmt: skip
    rejects = pq.read_table(output / "rejects").to_pylist()
    assert stats["read"] == len(rows) == stats["kept"] + len(rejects)
    fates = {row["caption"]: (row["stage"], row["reason"]) for row in rejects}
    # Four captions are credited to "cat" (the rocket one goes to the rarer "rocket"); the pre-download cap
    # is ceil(2 × 1.5) = 3, so the cat caption with the worst cap_rank is not downloaded at all.
    keys = {c: sample_key("pool.jsonl", i, (images / n).as_uri()) for i, (n, c) in enumerate(rows)}
    cats = [c for n, c in rows if " cat " in f" {c} " and "rocket" not in c]
    skipped = max(cats, key=lambda c: balance.cap_rank(keys[c], 0))
    expected = {
        "a cat photo that does not exist": ("fetch", "fetch_failed"),
        "a cat web page that is not an image": ("image", "image_undecodable"),
        skipped: ("balance_pre_download", "query_over_cap"),
        "a rocket cat on the launch pad": ("dedup", "eval_duplicate"),
    }
    assert {c: fates[c] for c in expected} == expected
    kept = {json.loads(m)["caption"] for m in _members(output, ".json")}
    assert {"an astronaut in a white space suit", "an astronaut drinking coffee from a cup"} <= kept
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["total_samples"] == stats["kept"] == len(kept)
    fetch = manifest["config"]["fetch"]
    assert (fetch["allow_file_urls"], fetch["file_url_root"]) == (True, str(images.resolve()))


def _members(output: Path, suffix: str) -> list[bytes]:
    found = []
    for shard in sorted(output.glob("*.tar")):
        with tarfile.open(shard) as tar:
            found += [tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(suffix)]
    return found
