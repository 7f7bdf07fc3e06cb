"""--key_column: a column's value (DataComp's uid) as the sample key, validated; duplicates become
read/key_duplicate with the row that keeps the key fixed by the data."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.rows import KEY_INVALID, KEY_MISSING, Columns, column_key, row_to_record, sample_key
from pipelines.unique_keys import KEY_DUPLICATE, KeepUniqueKeys

UID = Columns(key="uid")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4f6c1e0b9a2d4c77b5e3a1f08d9c2e61", "4f6c1e0b9a2d4c77b5e3a1f08d9c2e61"),
        (123456789, "123456789"),
        ("a-b_c:D", "a-b_c:D"),
        (None, KEY_MISSING),
        ("", KEY_MISSING),
        (float("nan"), KEY_MISSING),
        ("a.b", KEY_INVALID),
        ("a/b", KEY_INVALID),
        ("a\\b", KEY_INVALID),
        ("a b", KEY_INVALID),
        ("x\x00y", KEY_INVALID),
        ("k" * 129, KEY_INVALID),
        (1.5, KEY_INVALID),
        (True, KEY_INVALID),
    ],
)
def test_key_values(value: object, expected: str) -> None:
    found = column_key(value)
    assert (found if isinstance(found, str) else found[0]) == expected


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.one_of(st.text(max_size=200), st.integers(), st.binary(max_size=64), st.floats(), st.none()))
def test_a_key_is_never_unsafe_for_webdataset(value: object) -> None:
    found = column_key(value)
    if isinstance(found, str):
        assert found and len(found) <= 128 and not any(c in found for c in "./\\ \t\n\r\x00")


def test_rows_are_keyed_by_their_column_and_it_is_not_carried_twice() -> None:
    record = row_to_record(
        {"url": "http://a.example/1.jpg", "caption": "a cat", "uid": "u1", "lang": "en"}, "p.csv", 3, UID
    )
    assert record["key"] == "u1" and record["extra"] == {"lang": "en"}
    assert record["row_id"] == sample_key("p.csv", 3, "http://a.example/1.jpg")
    bad = row_to_record({"url": "http://a.example/1.jpg", "caption": "a cat", "uid": "u.1"}, "p.csv", 4, UID)
    assert (bad["stage"], bad["reason"]) == ("read", KEY_INVALID) and "'uid'" in bad["detail"]
    assert bad["extra"] == {}  # the reject keeps the carried columns (here none)
    plain = row_to_record(
        {"url": "http://a.example/1.jpg", "caption": "a cat", "uid": "u1"}, "p.csv", 3, Columns()
    )
    assert plain["key"] == sample_key("p.csv", 3, "http://a.example/1.jpg") and plain["extra"] == {
        "uid": "u1"
    }


def test_duplicated_keys_keep_the_row_with_the_smallest_row_id() -> None:
    records = [
        {
            "key": "u1",
            "row_id": row_id,
            "url": f"http://a.example/{row_id}.jpg",
            "caption": "c",
            "extra": {"n": row_id},
        }
        for row_id in ("r3", "r1", "r2")
    ] + [{"key": "u2", "row_id": "r9", "url": "http://a.example/9.jpg", "caption": "c", "extra": {}}]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        kept, rejects = pipeline | beam.Create(records) | KeepUniqueKeys()
        assert_that(kept | "KeptIds" >> beam.Map(lambda r: (r["key"], r["url"], "row_id" in r)), equal_to(
            [("u1", "http://a.example/r1.jpg", False), ("u2", "http://a.example/9.jpg", False)]
        ), label="Kept")  # fmt: skip
        assert_that(
            rejects
            | "RejectIds"
            >> beam.Map(lambda r: (r["key"], r["reason"], r["extra"]["n"], "3 rows" in r["detail"])),
            equal_to([("u1", KEY_DUPLICATE, "r3", True), ("u1", KEY_DUPLICATE, "r2", True)]),
            label="Rejects",
        )
