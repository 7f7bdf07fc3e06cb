"""The WebDataset half of the hostile corpora: bad archives, members and images, every fate written down
(see ``tests.hostile_corpus`` for the ``Corpus`` it fills)."""

from __future__ import annotations

import bz2
import io
import json
import lzma
import tarfile
import zlib
from pathlib import Path

import numpy as np
import zstandard
from PIL import Image

from tests.hostile_corpus import ALLOWLIST, COMMON, MAX_IMAGE_BYTES, Corpus
from tests.hostile_server import distinct_jpeg, lying_jpeg, png_header

TAR_BOMB_BYTES = 1536 * 1024 * 1024
TAR_SPARSE_BYTES = 2048 * 1024 * 1024


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
    """A sample whose image is a GNU sparse member of 10 stored bytes that expands to 2 GiB, then a good one."""
    sparse = _sparse_header("sp.jpg", 10, TAR_SPARSE_BYTES) + b"0123456789".ljust(512, b"\0")
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

    # t04: a .tar.gz of a 1.5 GiB member of zeros (about 7 MB on disk), then a good sample.
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
