"""Corpora of hostile inputs with the fate of every one written down: here candidate tables (bad rows,
URLs, servers, files); WebDataset tars (bad archives, members and images) in ``tests.hostile_tar_corpus``.

Each corpus says, independently of the job: ``captions`` — for every candidate that gets past the read
stage, a unique token in its caption and its fate (``"kept"`` or ``"stage/reason"``); ``read`` — per input
file, how many read rejects of which reason it must give. So ``read`` of the job must equal
``len(captions) + Σ read``, and every token must end where its fate says.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.hostile_server import HostileServer, distinct_jpeg, gzip_bomb

ALLOWLIST = ["cat"]
COMMON = ["--rare_tokens=off", "--tokenizer_vocab_size=0", "--no_report", "--v_tau=1"]
MAX_IMAGE_BYTES = 2 * 1024 * 1024


@dataclass
class Corpus:
    inputs: str
    args: list[str]
    captions: dict[str, str] = field(default_factory=dict)
    read: dict[str, Counter] = field(default_factory=dict)

    def caption(self, token: str, fate: str) -> str:
        assert token not in self.captions, token
        self.captions[token] = fate
        return f"a cat photo for case {token}"

    def expect_read(self, source: str, reason: str, count: int = 1) -> None:
        self.read.setdefault(source, Counter())[reason] += count

    @property
    def expected_read(self) -> int:
        return len(self.captions) + sum(sum(c.values()) for c in self.read.values())


# --- candidate tables -------------------------------------------------------------------------------

# (behaviour on the hostile server, fate); each becomes one JSONL row with its own id.
SERVER_CASES = [
    ("header-drip", "fetch/fetch_timeout"),
    ("status-drip", "fetch/fetch_timeout"),
    ("continue-flood", "fetch/fetch_timeout"),
    ("silent", "fetch/fetch_timeout"),
    ("reset", "fetch/fetch_failed"),
    ("gzip-bomb", "fetch/response_too_large"),
    ("gzip", "kept"),
    ("deflate", "kept"),
    ("brotli", "fetch/content_encoding_unsupported"),
    ("gzip-corrupt", "fetch/content_encoding_invalid"),
    ("bad-status", "fetch/response_malformed"),
    ("not-http", "fetch/response_malformed"),
    ("many-headers", "fetch/response_malformed"),
    ("long-header", "fetch/response_malformed"),
    ("close-early", "fetch/fetch_failed"),
    ("bad-chunked", "fetch/fetch_failed"),
    ("length-huge", "fetch/response_too_large"),
    ("stream-unbounded", "fetch/response_too_large"),
    ("robots-none", "fetch/robots_disallowed"),
    ("robots-agent-none", "fetch/robots_disallowed"),
    ("not-found", "fetch/http_error"),
    ("server-error", "fetch/http_error"),
    ("too-many-requests", "fetch/http_error"),
    ("empty", "image/image_missing"),
    ("html", "image/image_undecodable"),
    ("lying-jpeg", "image/image_truncated"),
    ("png-bomb", "image/image_too_many_pixels"),
    ("truncated-jpeg", "image/image_truncated"),
    ("tiny-image", "image/image_too_small"),
    ("redirect-loop", "fetch/too_many_redirects"),
    ("redirect-metadata", "fetch/url_private_address"),
    ("redirect-invalid", "fetch/url_invalid"),
    ("redirect-file", "fetch/url_unsupported_scheme"),
    ("redirect-iri", "kept"),
]


def _url_cases(base: str, files: Path, outside: Path) -> list[tuple[str, object, str]]:
    """(token, url, fate) for URLs that are bad before any server is involved, and file:// URLs."""
    port = base.rsplit(":", 1)[1]
    return [
        ("u01", "http://[::1/x.jpg", "fetch/url_invalid"),
        ("u02", "http://a]b/x.jpg", "fetch/url_invalid"),
        ("u03", "http://example.com:99999/x.jpg", "fetch/url_invalid"),
        ("u04", "http:///x.jpg", "fetch/url_invalid"),
        ("u05", f"{base}/img/x\x00y.jpg", "fetch/url_invalid"),
        ("u06", "http://a..b/x.jpg", "fetch/url_invalid"),
        ("u07", "http://" + "a" * 70 + ".example/x.jpg", "fetch/url_invalid"),
        ("u08", f"{base}/img/" + "x" * 9000, "fetch/url_too_long"),
        ("u09", "javascript:alert(1)", "fetch/url_unsupported_scheme"),
        ("u10", "//example.com/x.jpg", "fetch/url_unsupported_scheme"),
        ("u11", "ftp://example.com/x.jpg", "fetch/url_unsupported_scheme"),
        ("u12", "http://169.254.169.254/latest/meta-data/", "fetch/url_private_address"),
        ("u13", "http://[::ffff:169.254.169.254]/", "fetch/url_private_address"),
        ("u14", f"{base}/img/café näive u14.jpg", "kept"),  # raw IRI and spaces: percent-encoded
        ("u15", f"http://user:secret@127.0.0.1:{port}/img/u15.jpg", "kept"),  # credentials dropped
        ("u16", f"  {base}/img/u16.jpg\t", "kept"),
        ("u17", (files / "u17.jpg").as_uri(), "kept"),
        ("u18", (files / "pipe.jpg").as_uri(), "fetch/file_not_regular"),
        ("u19", files.as_uri(), "fetch/file_not_regular"),
        ("u20", (files / "link.jpg").as_uri(), "fetch/file_url_outside_root"),
        ("u21", outside.as_uri(), "fetch/file_url_outside_root"),
        ("u22", (files / "missing.jpg").as_uri(), "fetch/fetch_failed"),
        ("u23", "file://remote.host/etc/passwd", "fetch/url_invalid"),
    ]


def _jsonl_rows(corpus: Corpus, server: HostileServer, files: Path, outside: Path) -> list[bytes]:
    """The main JSONL file's lines; read-stage rejects are counted under its name."""
    name = "a_rows.jsonl"
    good = corpus.caption("r01", "kept")
    lines = [b"\xef\xbb\xbf" + json.dumps({"url": server.url("/img/r01.jpg"), "caption": good}).encode()]
    for token, url, fate in _url_cases(server.base_url, files, outside):
        lines.append(json.dumps({"url": url, "caption": corpus.caption(token, fate)}).encode())
    for index, (behaviour, fate) in enumerate(SERVER_CASES):
        token = f"s{index:02d}"
        row = {"url": server.url(f"/b/{behaviour}/{token}"), "caption": corpus.caption(token, fate)}
        lines.append(json.dumps(row).encode())
    bad_rows = [
        (b"{broken json", "row_unparseable"),
        (b"[1, 2, 3]", "row_unparseable"),
        (b"[" * 100_000, "row_unparseable"),  # nested too deep for json's recursion
        (b'{"url": "http://x/y.jpg", "n": ' + b"7" * 5000 + b"}", "row_unparseable"),  # digits limit
        (b'{"url": "' + b"x" * 1_500_000 + b'"}', "row_too_large"),
        (json.dumps({"url": 12345, "caption": "a cat with a numeric url"}).encode(), "url_missing"),
        (json.dumps({"url": None, "caption": "a cat with a null url"}).encode(), "url_missing"),
        (json.dumps({"caption": "a cat without any url"}).encode(), "url_missing"),
        (json.dumps({"url": ["http://x/y.jpg"], "caption": "a cat with a list url"}).encode(), "url_missing"),
    ]
    for line, reason in bad_rows:
        lines.append(line)
        corpus.expect_read(name, reason)
    lines.append(b"")  # blank lines are not rows
    odd = [
        ("r02", {"caption": {"text": "a dict"}}, "text/text_missing"),
        ("r03", {"big_column": "y" * 300_000}, "kept"),  # only a carried column is large
        ("r04", {"caption": "\x1b[31ma red cat\x1b[0m photo for case r04"}, "kept"),
        (
            "r05",
            {"caption": "a cat photo for case r05 \ud800 with a lone surrogate", "note": "\udfff"},
            "kept",
        ),
        ("r06", {"score": float("nan"), "inf": float("inf")}, "kept"),
    ]
    for token, fields, fate in odd:
        row = {"url": server.url(f"/img/{token}.jpg"), "caption": corpus.caption(token, fate), **fields}
        if "caption" in fields and fate == "kept":
            row["caption"] = fields["caption"]
        lines.append(json.dumps(row, allow_nan=True).encode())
    caption = corpus.caption("r07", "kept").replace("photo", "caf\xe9 photo")
    lines.append(
        b'{"url": "%s", "caption": "%s", "plain": "na\xc3\xafve"}'
        % (server.url("/img/r07.jpg").encode(), caption.encode("cp1252"))
    )
    return lines


def table_corpus(root: Path, server: HostileServer) -> Corpus:
    gzip_bomb()  # made before the run: compressing it inside a request would itself pass the deadline
    tables, files = root / "tables", root / "files"
    tables.mkdir(parents=True)
    files.mkdir()
    outside = root / "secret.jpg"
    outside.write_bytes(distinct_jpeg("secret"))
    (files / "u17.jpg").write_bytes(distinct_jpeg("u17"))
    os.mkfifo(files / "pipe.jpg")
    (files / "link.jpg").symlink_to(outside)
    corpus = Corpus(
        inputs=str(tables / "*"),
        args=[
            *COMMON,
            "--fetch_timeout=1",
            "--fetch_deadline=2",
            "--fetch_total_deadline=3",
            "--fetch_retries=1",
            "--fetch_threads=48",
            "--allowed_networks=0.0.0.0/0,::/0",  # the metadata addresses must stay refused anyway
            "--allow_file_urls",
            f"--file_url_root={files}",
            "--max_row_bytes=1048576",
            "--max_input_file_bytes=33554432",
            f"--max_image_bytes={MAX_IMAGE_BYTES}",
        ],
    )
    (tables / "a_rows.jsonl").write_bytes(b"\n".join(_jsonl_rows(corpus, server, files, outside)) + b"\n")

    def row(token: str, fate: str = "kept") -> bytes:
        return json.dumps(
            {"url": server.url(f"/img/{token}.jpg"), "caption": corpus.caption(token, fate)}
        ).encode()

    (tables / "b_compressed.jsonl.gz").write_bytes(gzip.compress(row("g01") + b"\n" + row("g02") + b"\n"))
    whole = gzip.compress(row("g03") + b"\n" + row("g04") + b"\n")
    (tables / "c_truncated.jsonl.gz").write_bytes(whole[:-4])  # the gzip trailer is cut off
    corpus.expect_read("c_truncated.jsonl.gz", "file_unreadable")
    (tables / "d_not_really.jsonl.gz").write_bytes(row("g05") + b"\n")  # named .gz, plain text inside
    csv_lines = [
        b"\xef\xbb\xbfurl,caption,lang",
        f'{server.url("/img/c01.jpg")},"{corpus.caption("c01", "kept")}",en'.encode(),
        f'{server.url("/img/c02.jpg")},"an unterminated quote,en'.encode(),
        f"{server.url('/img/c03.jpg')},{corpus.caption('c03', 'kept')},en".encode(),
        f'{server.url("/img/c04.jpg")},"{corpus.caption("c04", "kept")}\nover two lines",en'.encode(),
        f"{server.url('/img/c05.jpg')},one field too many,en,extra".encode(),
        f"{server.url('/img/c06.jpg')},{corpus.caption('c06', 'kept')},en".encode(),
    ]
    corpus.expect_read("e_rows.csv", "row_malformed", 2)
    (tables / "e_rows.csv").write_bytes(b"\r\n".join(csv_lines) + b"\r\n")
    (tables / "f_rows.csv.gz").write_bytes(
        gzip.compress(f"url,caption\n{server.url('/img/c07.jpg')},{corpus.caption('c07', 'kept')}\n".encode())
    )
    (tables / "g_rows.tsv").write_bytes(
        f"url\tcaption\n{server.url('/img/c08.jpg')}\t{corpus.caption('c08', 'kept')}\n".encode()
    )
    (tables / "h_garbage.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")
    corpus.expect_read("h_garbage.parquet", "file_unreadable")
    bomb = zlib_spaces(64 * 1024 * 1024)
    (tables / "i_bomb.jsonl.gz").write_bytes(bomb)
    corpus.expect_read("i_bomb.jsonl.gz", "file_too_large")
    table = pa.table(
        {
            "url": [server.url("/img/p01.jpg"), None, server.url("/img/p03.jpg")],
            "caption": [
                corpus.caption("p01", "kept").encode(),
                "a cat with no url",
                corpus.caption("p03", "kept"),
            ],
            "nested": [{"a": 1}, {"a": 2}, {"a": None}],
        }
    )
    pq.write_table(table, tables / "j_rows.parquet")
    corpus.expect_read("j_rows.parquet", "url_missing")
    (root / "allowlist.json").write_text(json.dumps(ALLOWLIST))
    return corpus


def zlib_spaces(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * (1 << 20)
    return b"".join([*(compressor.compress(chunk) for _ in range(size >> 20)), compressor.flush()])
