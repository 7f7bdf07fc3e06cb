"""Two corpora of hostile inputs with the fate of every one written down: candidate tables (bad rows,
URLs, servers, files) and WebDataset tars (bad archives, members and images).

Each corpus says, independently of the job: ``captions`` — for every candidate that gets past the read
stage, a unique token in its caption and its fate (``"kept"`` or ``"stage/reason"``); ``read`` — per input
file, how many read rejects of which reason it must give. So ``read`` of the job must equal
``len(captions) + Σ read``, and every token must end where its fate says.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from PIL import Image

from tests.hostile_server import HostileServer, distinct_jpeg, gzip_bomb, lying_jpeg, png_header

ALLOWLIST = ["cat"]
COMMON = ["--rare_tokens=off", "--tokenizer_vocab_size=0", "--no_report", "--v_tau=1"]
MAX_IMAGE_BYTES = 2 * 1024 * 1024
TAR_BOMB_BYTES = 400 * 1024 * 1024


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


# --- WebDataset tars --------------------------------------------------------------------------------


def _member(name: str, data: bytes, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mtime = len(data), kind, link, 0
    return info


def _raw(members: list[tuple[str, bytes]], fmt: int = tarfile.GNU_FORMAT, encoding: str = "utf-8") -> bytes:
    """Headers and padded data of ``members``, without the end-of-archive blocks."""
    parts = []
    for name, data in members:
        parts.append(_member(name, data).tobuf(fmt, encoding, "surrogateescape"))
        parts.append(data + bytes(-len(data) % 512))
    return b"".join(parts)


def _tar(members: list[tuple[str, bytes]], fmt: int = tarfile.GNU_FORMAT, encoding: str = "utf-8") -> bytes:
    return _raw(members, fmt, encoding) + bytes(1024)


def _meta(key: str) -> list[tuple[str, bytes]]:
    """json and txt members of a sample that the read stage rejects whole (no caption token needed)."""
    meta = json.dumps({"url": f"https://images.example/{key}.jpg"}).encode()
    return [(f"{key}.json", meta), (f"{key}.txt", b"a cat in a sample rejected whole")]


def _sample(
    corpus: Corpus, key: str, token: str, fate: str, image: bytes | None = None
) -> list[tuple[str, bytes]]:
    meta = json.dumps({"url": f"https://images.example/{token}.jpg", "key": key}).encode()
    members = [(f"{key}.json", meta), (f"{key}.txt", corpus.caption(token, fate).encode())]
    if image is not None:
        members.append((f"{key}.jpg", image))
    return members


def _good(corpus: Corpus, key: str, token: str) -> list[tuple[str, bytes]]:
    return _sample(corpus, key, token, "kept", distinct_jpeg(f"tar-{token}"))


def _header_offsets(data: bytes) -> list[int]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.offset for m in tar.getmembers()]


def _sparse_header(name: str, stored: int, expanded: int) -> bytes:
    """An old-GNU sparse header: ``stored`` bytes in the archive that expand to ``expanded``."""
    header = bytearray(_member(name, bytes(stored)).tobuf(tarfile.GNU_FORMAT))
    header[156:157] = tarfile.GNUTYPE_SPARSE
    header[386:398] = b"%011o\0" % (expanded - stored)  # one region: its offset, then its length
    header[398:410] = b"%011o\0" % stored
    header[483:495] = b"%011o\0" % expanded
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def _sparse_tar(corpus: Corpus) -> bytes:
    """A sample whose image is a GNU sparse member of 10 stored bytes that expands to 500 MB, then a good one."""
    sparse = _sparse_header("sp.jpg", 10, 500 * 1024 * 1024) + b"0123456789".ljust(512, b"\0")
    return _raw(_meta("sp")) + sparse + _tar(_good(corpus, "after", "t03"))


def tar_corpus(root: Path) -> Corpus:
    tars = root / "tars"
    tars.mkdir(parents=True)
    corpus = Corpus(inputs=str(tars / "*"), args=[*COMMON, f"--max_image_bytes={MAX_IMAGE_BYTES}"])
    (root / "allowlist.json").write_text(json.dumps(ALLOWLIST))

    # t01: the third member's header is corrupt; streaming tarfile stopped there and read 1 of 11.
    samples = [_sample(corpus, "s00", "t01x", "image/image_missing", distinct_jpeg("tar-t01x"))]
    samples += [_good(corpus, f"s{i:02d}", f"t01{i:02d}") for i in range(1, 11)]
    data = bytearray(_tar([m for s in samples for m in s]))
    data[_header_offsets(bytes(data))[2] + 5] ^= 0xFF
    (tars / "t01_corrupt_header.tar").write_bytes(bytes(data))
    corpus.expect_read("t01_corrupt_header.tar", "tar_corrupt")

    # t02: one sample's members apart from each other.
    a = _sample(corpus, "a", "t02a", "image/image_missing", distinct_jpeg("tar-t02a"))
    (tars / "t02_split.tar").write_bytes(_tar([*a[:2], *_good(corpus, "b", "t02b"), a[2]]))
    corpus.expect_read("t02_split.tar", "tar_sample_split")

    (tars / "t03_sparse.tar").write_bytes(_sparse_tar(corpus))
    corpus.expect_read("t03_sparse.tar", "tar_member_unsupported")

    # t04: a .tar.gz of a 400 MB member of zeros (a few hundred kB on disk), then a good sample.
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    header = _member("bomb.jpg", b"")
    header.size = TAR_BOMB_BYTES
    parts = [compressor.compress(_raw(_meta("bomb")) + header.tobuf(tarfile.GNU_FORMAT))]
    zeros = bytes(1 << 20)
    parts += [compressor.compress(zeros) for _ in range(TAR_BOMB_BYTES >> 20)]
    parts.append(compressor.compress(_tar(_good(corpus, "after", "t04"))))
    parts.append(compressor.flush())
    (tars / "t04_bomb.tar.gz").write_bytes(b"".join(parts))
    corpus.expect_read("t04_bomb.tar.gz", "tar_member_too_large")

    big = np.random.default_rng(4).integers(0, 255, MAX_IMAGE_BYTES + 1000, dtype=np.uint8).tobytes()
    (tars / "t05_member_too_large.tar").write_bytes(_tar([*_meta("big"), ("big.jpg", big)]))
    corpus.expect_read("t05_member_too_large.tar", "tar_member_too_large")

    whole = _tar([*_good(corpus, "ok", "t06"), *_meta("cut"), ("cut.jpg", distinct_jpeg("cut", (640, 480)))])
    cut = _header_offsets(whole)[-1] + 512 + 700
    (tars / "t06_truncated.tar").write_bytes(whole[:cut])
    corpus.expect_read("t06_truncated.tar", "tar_truncated")

    garbage = np.random.default_rng(7).integers(0, 255, 512 * 7, dtype=np.uint8).tobytes()
    (tars / "t07_trailing_garbage.tar").write_bytes(_tar(_good(corpus, "ok", "t07")) + garbage)
    corpus.expect_read("t07_trailing_garbage.tar", "tar_corrupt")

    (tars / "t08_garbage.tar").write_bytes(
        np.random.default_rng(8).integers(0, 255, 5000, dtype=np.uint8).tobytes()
    )
    corpus.expect_read("t08_garbage.tar", "tar_corrupt")
    corpus.expect_read("t08_garbage.tar", "tar_truncated")

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.addfile(_member("ln.jpg", b"", tarfile.SYMTYPE, "/etc/passwd"))
        tar.addfile(_member("ln.json", b"", tarfile.SYMTYPE, "/etc/shadow"))
        tar.addfile(_member("fifo.jpg", b"", tarfile.FIFOTYPE))
        tar.addfile(_member("fifo.txt", b"a cat"), io.BytesIO(b"a cat"))
        tar.addfile(_member("hard.jpg", b"", tarfile.LNKTYPE, "fifo.txt"))
        tar.addfile(_member("dir.jpg", b"", tarfile.DIRTYPE))
        tar.addfile(_member("images", b"", tarfile.DIRTYPE))  # a plain folder: not a sample
        for name, data in _good(corpus, "images/in", "t09"):
            tar.addfile(_member(name, data), io.BytesIO(data))
    (tars / "t09_links.tar").write_bytes(out.getvalue())
    corpus.expect_read("t09_links.tar", "tar_member_not_file", 4)

    long = "images/" + "ü" * 120 + "/名前"
    (tars / "t10_pax.tar").write_bytes(_tar(_good(corpus, long, "t10"), fmt=tarfile.PAX_FORMAT))

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(
            _member("pax", b"garbage, not records\n", tarfile.XHDTYPE), io.BytesIO(b"garbage, not records\n")
        )
        for name, data in _good(corpus, "after", "t11"):
            tar.addfile(_member(name, data), io.BytesIO(data))
    (tars / "t11_bad_pax.tar").write_bytes(out.getvalue())
    corpus.expect_read("t11_bad_pax.tar", "tar_corrupt")

    bad_json = [
        ("bj.json", b"{not json"),
        ("bj.txt", b"a cat with broken json"),
        ("bj.jpg", distinct_jpeg("bj")),
    ]
    (tars / "t12_bad_json.tar").write_bytes(_tar(bad_json))
    corpus.expect_read("t12_bad_json.tar", "row_unparseable")

    bad_latin1 = [("mauvé.json", b"{bad"), ("mauvé.txt", b"a cat whose json is broken")]  # named in a reject
    (tars / "t13_latin1_names.tar").write_bytes(
        _tar([*_good(corpus, "café", "t13"), *bad_latin1], encoding="latin-1")
    )
    corpus.expect_read("t13_latin1_names.tar", "row_unparseable")

    twice = _good(corpus, "d", "t14")
    (tars / "t14_member_twice.tar").write_bytes(_tar([*twice, twice[2]]))
    corpus.expect_read("t14_member_twice.tar", "tar_sample_split")

    (tars / "t15_concatenated.tar").write_bytes(
        _tar(_good(corpus, "one", "t15a")) + _tar(_good(corpus, "two", "t15b"))
    )
    (tars / "t16_images.tar").write_bytes(_tar([m for s in _image_samples(corpus) for m in s]))
    (tars / "t17_xz.tar.xz").write_bytes(lzma.compress(_tar(_good(corpus, "xz", "t17"))))
    (tars / "t18_bzip2_named_plain.tar").write_bytes(bz2.compress(_tar(_good(corpus, "bz", "t18"))))
    (tars / "t19_zstd.tar.zst").write_bytes(
        zstandard.ZstdCompressor().compress(_tar(_good(corpus, "zs", "t19")))
    )
    return corpus


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _noise(name: str, size: tuple[int, int] = (320, 240)) -> Image.Image:
    return Image.open(io.BytesIO(distinct_jpeg(name, size))).convert("RGB")


def _image_samples(corpus: Corpus) -> list[list[tuple[str, bytes]]]:
    exif = Image.Exif()
    exif[0x0112] = 99  # an orientation that does not exist
    sixteen = Image.fromarray(np.asarray(_noise("i16").convert("L"), dtype=np.uint16) * 257)
    frames = [_noise(f"gif{i}") for i in range(3)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    cases = [
        ("i01", lying_jpeg(), "image/image_truncated"),
        ("i02", png_header(30000, 30000), "image/image_too_many_pixels"),
        ("i03", b"", "image/image_missing"),
        ("i04", _encoded(_noise("i04"), "JPEG", exif=exif.tobytes()), "kept"),
        ("i05", _encoded(_noise("i05").convert("CMYK"), "JPEG"), "kept"),
        ("i06", _encoded(sixteen, "PNG"), "kept"),
        ("i07", gif.getvalue(), "kept"),
        ("i08", b"<!doctype html><html>not an image</html>", "image/image_undecodable"),
        ("i09", distinct_jpeg("i09", (150, 100)), "image/image_too_small"),
        ("i10", distinct_jpeg("i10", (900, 250)), "image/image_bad_aspect"),
        ("i11", distinct_jpeg("i11", (640, 480))[:3000], "image/image_truncated"),
        ("i12", _encoded(_noise("i12"), "WEBP"), "kept"),
    ]
    return [_sample(corpus, token, token, fate, data) for token, data, fate in cases]
