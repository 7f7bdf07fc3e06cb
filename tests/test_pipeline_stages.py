"""Single stages on the real local runner, each checked against the plain in-memory reference in filters/."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from filters import balance
from filters.dedup import DedupConfig, HashedImage, reference_losers
from filters.hashing import unit_hash
from filters.matching import QueryMatcher
from filters.rare_tokens import TokenFrequencyTable, check_rare_tokens, count_ngrams
from filters.text import TextRules, normalize_text
from pipelines.dedup_stages import Deduplicate
from pipelines.match_stages import BalanceQueries, MatchQueries
from pipelines.read import Columns, ReadCandidates, match_inputs
from pipelines.text_stages import CleanText, DropSharedAltTexts
from pipelines.write import WriteShards, tar_bytes

COLLECTED: dict[str, list] = {}


def run(build) -> dict[str, list]:
    """Runs ``build(pipeline) -> {label: pcollection}`` on the in-process runner; returns the elements."""
    COLLECTED.clear()
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        for label, pcollection in build(pipeline).items():
            _ = (
                pcollection
                | f"Collect{label}" >> beam.combiners.ToList()
                | f"Store{label}" >> beam.Map(_store_list, label)
            )
    return dict(COLLECTED)


def _store_list(items: list, label: str) -> None:
    # A module-level function is pickled by reference, so the in-process runner fills this module's dict.
    COLLECTED[label] = items


def test_read_tables_of_every_format_with_bad_rows(tmp_path: Path) -> None:
    table = pa.table({"URL": ["http://a/1.jpg", "http://a/2.jpg", None], "TEXT": ["one dog", "two cats", "none"],
                      "when": [datetime.datetime(2024, 1, 2)] * 3, "raw": [b"\xff\x00", b"ok", b""]})  # fmt: skip
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=2)
    (tmp_path / "b.jsonl").write_text(
        '{"URL": "http://b/1.jpg", "TEXT": "a bird", "score": 0.5}\n{broken\n[1, 2]\n{"TEXT": "no url"}\n'
    )
    with open(tmp_path / "c.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(
            [["URL", "TEXT", "lang"], ["http://c/1.jpg", "a cow", "en"], ["http://c/2.jpg"]]
        )
    (tmp_path / "d.tsv").write_text("URL\tTEXT\nhttp://d/1.jpg\ta deer, grazing\n")
    (tmp_path / "e.parquet").write_bytes(b"PAR1 not really")
    shard = io.BytesIO()
    with tarfile.open(fileobj=shard, mode="w") as tar:
        for name, data in [
            ("s1.json", b'{"URL": "http://f/1.jpg"}'),
            ("s1.txt", b"a fox"),
            ("s2.jpg", b"x" * 5000),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "f.tar").write_bytes(shard.getvalue()[:3000])  # cut inside s2.jpg
    files = match_inputs([str(tmp_path / "*")], "auto")
    columns = Columns(url="URL", caption="TEXT")

    def build(pipeline):
        records, rejects = pipeline | ReadCandidates(files, columns)
        return {"records": records, "rejects": rejects}

    out = run(build)
    records = {r["url"]: r for r in out["records"]}
    assert set(records) == {
        "http://a/1.jpg",
        "http://a/2.jpg",
        "http://b/1.jpg",
        "http://c/1.jpg",
        "http://d/1.jpg",
        "http://f/1.jpg",
    }
    assert (
        records["http://f/1.jpg"]["caption"] == "a fox" and records["http://f/1.jpg"]["image_bytes"] is None
    )
    assert records["http://c/1.jpg"]["extra"] == {"lang": "en"}
    assert records["http://a/2.jpg"]["extra"] == {"when": "2024-01-02T00:00:00", "raw": "ok"}
    assert records["http://a/1.jpg"]["extra"]["raw"] == "base64:/wA="
    assert records["http://b/1.jpg"]["extra"] == {"score": 0.5}
    assert records["http://d/1.jpg"]["caption"] == "a deer, grazing"
    reasons = Counter(r["reason"] for r in out["rejects"])
    # e.parquet is unreadable; f.tar ends inside s2.jpg: that sample is named, s1 before it is kept.
    assert reasons == {
        "url_missing": 2,
        "row_unparseable": 2,
        "row_malformed": 1,
        "file_unreadable": 1,
        "tar_truncated": 1,
    }
    assert all(r["stage"] == "read" for r in out["rejects"])
    keys = [r["key"] for r in out["records"]] + [r["key"] for r in out["rejects"]]
    assert len(set(keys)) == len(keys) and all("." not in k and len(k) == 24 for k in keys)
    assert {r["key"] for r in run(build)["records"]} == {r["key"] for r in out["records"]}  # stable


def test_clean_text_rare_tokens_match_the_in_memory_table(tmp_path: Path) -> None:
    captions = ["a dog on the beach", "a dog in the park", "the cat on the sofa", "a zyxwv on the beach",
                "IMG_2019.jpg", "dog", "a cat and a dog on the beach at dusk"]  # fmt: skip
    records = [
        {"key": f"k{i}", "url": f"http://x/{i}.jpg", "caption": c, "extra": {}}
        for i, c in enumerate(captions)
    ]
    rules = TextRules()
    unigrams, bigrams = count_ngrams(normalize_text(c) for c in captions)
    table = TokenFrequencyTable.from_counts(unigrams, bigrams, 8, 4)
    (tmp_path / "table.json").write_text(json.dumps(table.to_json()))

    def build(pipeline):
        pool = pipeline | "Pool" >> beam.Create(records)
        from_pool = pool | "FromPool" >> CleanText(rules, "pool", top_unigrams=8, top_bigrams=4)
        from_file = pool | "FromFile" >> CleanText(rules, "file", str(tmp_path / "table.json"))
        return {"pool": from_pool[0], "file": from_file[0], "rejects": from_pool[1]}

    out = run(build)
    expected = {c for c in captions[:4] + captions[6:] if check_rare_tokens(c, table) is None}
    assert {r["caption"] for r in out["pool"]} == {r["caption"] for r in out["file"]} == expected
    reasons = {r["caption"]: (r["reason"], r["detail"]) for r in out["rejects"]}
    assert reasons["IMG_2019.jpg"][0] == "text_filename" and reasons["dog"][0] == "text_too_short"
    assert reasons["a zyxwv on the beach"] == ("text_rare_tokens", "zyxwv")


def test_shared_alt_texts_count_distinct_image_urls_case_insensitively() -> None:
    rows = [("Alt Img of a dog", "http://x/1"), ("alt img of a dog", "http://x/2"), ("alt img of a dog", "http://x/2"),
            ("a dog on the beach", "http://x/3")]  # fmt: skip
    records = [{"key": f"k{i}", "url": u, "caption": c} for i, (c, u) in enumerate(rows)]

    def build(pipeline):
        kept, rejects = pipeline | beam.Create(records) | DropSharedAltTexts(max_images=1)
        return {"kept": kept, "rejects": rejects}

    out = run(build)
    assert [r["caption"] for r in out["kept"]] == ["a dog on the beach"]
    assert {r["reason"] for r in out["rejects"]} == {"text_shared_by_many_images"} and len(
        out["rejects"]
    ) == 3


def balance_pool(tmp_path: Path) -> tuple[list[dict], Path]:
    """400 captions over 6 queries with Zipf-like frequencies, several matching more than one query."""
    words = ["dog", "cat", "tree", "car", "boat", "kite"]
    records = []
    for i in range(400):
        chosen = [w for j, w in enumerate(words) if unit_hash(f"c{i}", f"w{j}") < 0.9 / (j + 1)] or [
            "nothing"
        ]
        records.append({"key": f"{i:04d}", "url": f"http://x/{i}", "caption": "a " + " and a ".join(chosen)})
    allowlist = tmp_path / "allow.json"
    allowlist.write_text(json.dumps(words))
    return records, allowlist


@pytest.mark.parametrize("mode", ["exact", "metaclip"])
def test_balance_equals_the_in_memory_reference(tmp_path: Path, mode: str) -> None:
    records, allowlist = balance_pool(tmp_path)
    cap, seed = 25, 3

    def build(pipeline):
        matched, no_match = pipeline | beam.Create(records) | MatchQueries(str(allowlist))
        kept, over = matched | BalanceQueries("balance", mode, cap, seed)
        return {"kept": kept, "over": over, "no_match": no_match}

    out = run(build)
    matcher = QueryMatcher(json.loads(allowlist.read_text()))
    pairs = [(r["key"], matcher.match(r["caption"])) for r in records]
    counts = Counter(i for _, ids in pairs for i in ids)
    if mode == "exact":
        expected = balance.exact_cap(pairs, counts, cap, seed)
        credited = Counter(r["credited_query"] for r in out["kept"])
        assert max(credited.values()) == cap
    else:
        expected = {key for key, ids in pairs if ids and balance.metaclip_keep(key, ids, counts, cap, seed)}
    assert {r["key"] for r in out["kept"]} == expected
    assert len(out["kept"]) + len(out["over"]) + len(out["no_match"]) == len(records)
    assert {r["reason"] for r in out["over"]} == {"query_over_cap"}


def test_dedup_equals_the_in_memory_reference() -> None:
    config = DedupConfig(radius=4)
    base = [format(int(unit_hash(f"b{i}", "phash") * 2**64), "016x") for i in range(40)]
    records = []
    for i, phash in enumerate(base):
        variants = [phash]
        if i % 4 == 0:  # near copies: 1-2 bits from the original, and a chain link 4 bits from the first copy
            value = int(phash, 16)
            variants += [
                format(value ^ 0b1, "016x"),
                format(value ^ 0b10, "016x"),
                format(value ^ 0b11100, "016x"),
            ]
        for j, variant in enumerate(variants):
            records.append({"key": f"{i:03d}{j}", "sha256": f"sha{i}-{j}", "phash": variant, "caption": f"c{i}{j}",
                            "original_width": 300 + j, "original_height": 300})  # fmt: skip
    records.append({**records[0], "key": "0000x", "caption": "an exact copy"})
    records.append({**records[1], "key": "0001y", "sha256": "another file", "caption": "same look"})
    expected = reference_losers(
        [
            HashedImage(r["key"], r["sha256"], r["phash"], r["original_width"], r["original_height"])
            for r in records
        ],
        config.radius,
    )

    def build(pipeline):
        kept, rejects = pipeline | beam.Create(records) | Deduplicate(config)
        return {"kept": kept, "rejects": rejects}

    out = run(build)
    assert {r["key"]: r["reason"] for r in out["rejects"]} == expected
    assert {"0000x", "0001y"} <= expected.keys() and len(expected) > 12
    assert len(out["kept"]) + len(out["rejects"]) == len(records)


def test_write_shards_keeps_the_byte_bound_and_numbers_shards_contiguously(tmp_path: Path) -> None:
    records = [{"key": hashlib.blake2b(bytes([i]), digest_size=6).hexdigest(), "caption": f"caption {i}",
                "jpeg_size": 3000 + 97 * i} for i in range(40)]  # fmt: skip
    payloads = [(r["key"], bytes([i % 251]) * r["jpeg_size"]) for i, r in enumerate(records)]
    max_bytes = 40_960

    def build(pipeline):
        light = pipeline | "Light" >> beam.Create(records)
        heavy = pipeline | "Heavy" >> beam.Create([*payloads, ("dropped", b"x" * 10)])
        return {
            "shards": (light, heavy) | WriteShards(str(tmp_path), shard_size=15, max_bytes=max_bytes, seed=1)
        }

    shards = sorted(run(build)["shards"], key=lambda s: s["name"])
    assert [s["name"] for s in shards] == [f"{i:05d}.tar" for i in range(len(shards))]
    assert len(shards) > 3  # buckets of ~13 samples, split further by the byte bound
    seen = []
    for shard in shards:
        data = (tmp_path / shard["name"]).read_bytes()
        assert len(data) == shard["bytes"] <= max_bytes
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = tar.getnames()
            assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
        keys = [n.split(".")[0] for n in names[::3]]
        assert keys == sorted(keys) and len(names) == 3 * shard["samples"]
        seen += keys
    assert sorted(seen) == sorted(r["key"] for r in records)
    assert tar_bytes(0) == 10_240  # an empty tar is one 10 KiB record: the bound accounts for padding
