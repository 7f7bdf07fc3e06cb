"""Property-based tests (hypothesis) of every function that parses outside input: arbitrary input gives a
value or a named reason, never an exception. Derandomised (the same examples on every CI run), no example
database, bounded example counts so the whole file stays well under a minute."""

from __future__ import annotations

import gzip
import io
import ipaddress
import json
import tarfile
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters import urls
from filters.image import IMAGE_REASONS, ProcessedImage, process_image
from filters.jpeg_scan import scan_data_shortfall
from filters.streams import CorruptInput, InputTooLarge, LongLine, bounded_lines, open_decompressed
from filters.tar_members import TarDamage, TarLimits, TarMember, read_tar
from filters.text import coerce_text, normalize_text
from pipelines import fetch, net_guard
from pipelines.fetch import FetchConfig, fetch_url
from pipelines.rows import Columns, ReadLimits, ReadReject, delimited_records, jsonl_records, row_to_record
from pipelines.tar_samples import tar_records
from tests.hostile_server import distinct_jpeg, png_header

PROPERTY = settings(
    max_examples=150,
    deadline=None,  # a shared 2-core machine: time per example is not the property
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(PROPERTY, max_examples=60)
LIMITS = ReadLimits(max_row_bytes=4096, max_extra_value_bytes=256)
FETCH_REASONS = {v for k, v in vars(fetch).items() if k.isupper() and isinstance(v, str)} | {
    fetch.FILE_NOT_REGULAR,
    fetch.FILE_URL_OUTSIDE_ROOT,
}

url_chars = st.characters(codec="utf-8") | st.sampled_from([*"[]@:%/?#&= .\t\n\x00", "é", "名", "\ud800"])
url_like = st.builds(
    lambda scheme, host, port, path: f"{scheme}{host}{port}{path}",
    st.sampled_from(["http://", "https://", "HTTP://", "file://", "ftp://", "//", "", "javascript:"]),
    st.text(url_chars, max_size=20)
    | st.sampled_from(["[::1", "a]b", "user:pw@h", "例え.jp", "[::1]", "10.0.0.1"]),
    st.sampled_from(["", ":80", ":99999", ":x", ":"]),
    st.text(url_chars, max_size=40),
)


def _utf8(text: str) -> None:
    text.encode("utf-8")  # raises for a lone surrogate: such a string could not be written out


@PROPERTY
@given(st.one_of(url_like, st.text(max_size=60), st.none(), st.integers(), st.binary(max_size=20)))
def test_normalize_url_gives_a_sendable_url_or_a_reason(value: object) -> None:
    result = urls.normalize_url(value)
    if isinstance(result, urls.UrlProblem):
        assert result.reason in (
            urls.URL_MISSING,
            urls.URL_INVALID,
            urls.URL_TOO_LONG,
            urls.URL_UNSUPPORTED_SCHEME,
        )
        return
    assert result.scheme in urls.SCHEMES
    if result.scheme != "file":
        assert result.url.isascii() and " " not in result.url and not any(ord(c) < 32 for c in result.url)
        parts = urlsplit(result.url)
        assert parts.hostname
        assert parts.port is None or 0 <= parts.port <= 65535
        assert urls.normalize_url(result.url) == result  # normalising twice changes nothing


GUARDED = FetchConfig(timeout=0.5, deadline=1.0, retries=0)
OPENER = fetch.FetchSession(GUARDED)  # built once: an opener loads the system's CA certificates


@PROPERTY
@given(st.text(st.characters(codec="utf-8") | st.sampled_from(list("%[]@:/ ")), max_size=40))
def test_fetch_url_never_raises_and_never_reaches_the_network_for_refused_hosts(tail: str) -> None:
    for url in (f"http://10.0.0.1/{tail}", f"http://[::1]:81/{tail}", tail):
        result = fetch_url(url, GUARDED, OPENER)
        assert result.body is None and result.reason in FETCH_REASONS


@PROPERTY
@given(
    st.ip_addresses(),
    st.lists(
        st.ip_addresses().map(lambda ip: ipaddress.ip_network(f"{ip}/{ip.max_prefixlen // 2}", strict=False)),
        max_size=3,
    ),
)
def test_address_guard_is_total_and_keeps_metadata_refused_unless_named(ip: object, allowed: list) -> None:
    category = net_guard.refused_category(ip)  # type: ignore[arg-type]
    assert category is None or isinstance(category, str)
    metadata = ipaddress.ip_address("169.254.169.254")
    wide = (*allowed, ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    assert not net_guard._allowed(metadata, wide)
    assert net_guard._allowed(metadata, (ipaddress.ip_network("169.254.169.254/32"),))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
cell = json_values | st.binary(max_size=20) | st.text(st.characters(), max_size=40)


def _check_records(records: list[dict], url_required: bool = True) -> None:
    """Records are well-formed and writable; tables need a URL, tar samples may lack one (no fetch)."""
    for record in records:
        assert len(record["key"]) == 24 and "." not in record["key"]
        if isinstance(record, ReadReject):
            assert record["stage"] == "read" and record["reason"]
        else:
            assert isinstance(record["url"], str) and (record["url"] or not url_required)
            assert record["caption"] is None or isinstance(record["caption"], str)
            _utf8(json.dumps(record["extra"], ensure_ascii=False, allow_nan=False))
        for field in ("url", "caption", "detail"):
            if isinstance(record.get(field), str):
                _utf8(record[field])


@PROPERTY
@given(st.dictionaries(st.text(max_size=8) | st.sampled_from(["url", "caption"]), cell, max_size=6))
def test_row_coercion_of_any_parquet_or_json_row(row: dict) -> None:
    _check_records([row_to_record(row, "t.parquet", 0, Columns(), LIMITS)])


line_bytes = st.binary(max_size=200) | st.lists(json_values, max_size=3).map(lambda v: json.dumps(v).encode())
file_bytes = st.lists(
    line_bytes
    | st.sampled_from([b'{"url": "http://a/\xe9", "caption": "x\xff"}', b"\xef\xbb\xbf{}", b'"a,b']),
    max_size=8,
).map(b"\n".join)


@PROPERTY
@given(file_bytes)
def test_jsonl_rows_of_any_bytes(data: bytes) -> None:
    lines = bounded_lines(io.BytesIO(data), LIMITS.max_row_bytes, 1 << 20)
    _check_records(list(jsonl_records(lines, "t.jsonl", Columns(), LIMITS)))


csv_text = st.lists(st.text(st.sampled_from(list('ab,"\t\r é')), max_size=30), min_size=1, max_size=8).map(
    lambda rows: "\n".join(["url,caption", *rows]).encode("utf-8")
)


@PROPERTY
@given(csv_text | file_bytes, st.sampled_from([",", "\t"]))
def test_csv_and_tsv_rows_of_any_bytes(data: bytes, delimiter: str) -> None:
    lines = bounded_lines(io.BytesIO(data), 64, 1 << 20)  # a small row bound, so it is hit too
    _check_records(list(delimited_records(lines, "t.csv", Columns(), LIMITS, delimiter)))


@PROPERTY
@given(
    st.binary(max_size=3000)
    | st.builds(lambda d: gzip.compress(d)[: len(d) % 40 + 10], st.binary(max_size=200))
)
def test_decompression_and_lines_raise_only_named_errors(data: bytes) -> None:
    try:
        for _, line in bounded_lines(open_decompressed(io.BytesIO(data)), 100, 2000):
            assert isinstance(line, bytes | LongLine)
            assert not isinstance(line, bytes) or len(line) <= 100
    except (CorruptInput, InputTooLarge):
        pass


def _valid_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            ("a.json", b'{"url": "u"}'),
            ("a.txt", b"a cat"),
            ("a.jpg", b"x" * 700),
            ("b" * 120 + ".txt", b"y"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


VALID_TAR = _valid_tar()
mutated_tar = st.builds(
    lambda flips, cut: bytes(
        (b ^ flips.get(i, 0)) for i, b in enumerate(VALID_TAR[: cut if cut else len(VALID_TAR)])
    ),
    st.dictionaries(st.integers(0, len(VALID_TAR) - 1), st.integers(1, 255), max_size=6),
    st.integers(0, len(VALID_TAR)),
)


@PROPERTY
@given(mutated_tar | st.binary(max_size=4000))
def test_tar_reading_of_any_bytes_accounts_for_every_range(data: bytes) -> None:
    limits = TarLimits(max_member_bytes=600, max_header_bytes=2048, max_total_bytes=1 << 20)
    events = list(read_tar(io.BytesIO(data), limits))
    for event in events:
        assert isinstance(event, TarMember | TarDamage)
        assert 0 <= event.offset <= len(data)
        if isinstance(event, TarMember) and event.data is not None:
            assert len(event.data) <= 600
    _check_records(list(tar_records(events, "t.tar", Columns(), LIMITS)), url_required=False)


@PROPERTY
@given(
    st.text(max_size=200)
    | st.binary(max_size=200)
    | st.sampled_from(["\x1b[31mred\x1b[0m", "caf\xe9", "\x9b1m", "%E9"])
)
def test_caption_normalisation_gives_one_clean_line(value: object) -> None:
    text = normalize_text(value)
    _utf8(text)
    assert text == text.strip() and "  " not in text and "\x1b" not in text
    assert not any(ord(c) < 32 for c in text)
    assert isinstance(coerce_text(value), str)


JPEG = distinct_jpeg("property", (240, 240))
images = st.binary(max_size=600) | st.builds(
    lambda source, flips, cut: bytes(
        (b ^ flips.get(i, 0)) for i, b in enumerate(source[:cut] if cut else source)
    ),
    st.sampled_from([JPEG, png_header(300, 300), png_header(40000, 40000)]),
    st.dictionaries(st.integers(0, 400), st.integers(1, 255), max_size=4),
    st.integers(0, len(JPEG)),
)


@FEW
@given(images)
def test_image_opening_of_any_bytes_gives_an_image_or_an_image_reason(data: bytes) -> None:
    result = process_image(data)
    assert isinstance(result, ProcessedImage) or result in IMAGE_REASONS
    shortfall = scan_data_shortfall(data)
    assert shortfall is None or isinstance(shortfall, str)


def test_the_strategies_reach_the_interesting_cases() -> None:
    """The properties above are only as good as their inputs: the named cases are in reach."""
    assert urls.normalize_url("http://[::1/x").reason == urls.URL_INVALID  # type: ignore[union-attr]
    assert process_image(JPEG[: len(JPEG) // 3]) in IMAGE_REASONS
    damaged = bytearray(VALID_TAR)
    damaged[1024 + 5] ^= 0xFF
    assert any(isinstance(e, TarDamage) for e in read_tar(io.BytesIO(bytes(damaged))))
