"""A loopback-only TCP server that misbehaves the way web servers do, down to the socket level.

``with HostileServer(lifetime=240) as server: server.url("/b/header-drip/h01")``. It binds 127.0.0.1 only,
answers from daemon threads, and stops by itself after ``lifetime`` seconds even if nobody closes it
(a drip or flood also ends when the client leaves, or after ``_MAX_MISBEHAVE_SECONDS``). Paths:

``/img/<name>``               a JPEG that is distinct for every name (seeded noise, 320×240)
``/b/<behaviour>/<id>``       one of ``BEHAVIOURS`` (the id only makes each URL, and so each record, unique)
``/robots.txt``               with ``robots=NAME``: one of ``ROBOTS`` (huge, dripping, binary, redirecting, …)
"""

from __future__ import annotations

import contextlib
import gzip
import io
import socket
import socketserver
import threading
import time
import urllib.parse
import zlib
from functools import cache

import numpy as np
from PIL import Image

_MAX_MISBEHAVE_SECONDS = 20.0
_HEAD_LIMIT = 65536


@cache
def distinct_jpeg(name: str, size: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG whose pixels (and so sha256 and pHash) differ for every ``name``."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)  # coarse blocks: pHashes far apart
    image = Image.fromarray(small).resize(size, Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


@cache
def lying_jpeg() -> bytes:
    """A JPEG whose header says 9000×9000 but whose data holds 16×16 pixels."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 200)).save(out, format="JPEG")
    data = bytearray(out.getvalue())
    frame = data.find(b"\xff\xc0")
    data[frame + 5 : frame + 9] = (9000).to_bytes(2, "big") * 2
    return bytes(data)


def png_header(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, format="PNG")
    data = bytearray(out.getvalue())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    crc = zlib.crc32(bytes(data[12:29]))
    data[29:33] = crc.to_bytes(4, "big")
    return bytes(data)


@cache
def gzip_bomb(size: int = 1536 * 1024 * 1024) -> bytes:
    """1.5 GiB of zeros as a 7 MB gzip body (made once, before a job asks for it)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join([*(compressor.compress(chunk) for _ in range(size >> 20)), compressor.flush()])


def _response(status: str, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _jpeg_response(name: str, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    return _response("200 OK", distinct_jpeg(name), (("Content-Type", "image/jpeg"), *headers))


class HostileServer:
    """Threaded raw-socket server on 127.0.0.1:<free port> (a context manager; stops itself too)."""

    def __init__(self, lifetime: float = 240.0, robots: str | None = None) -> None:
        self.lifetime = lifetime
        self.robots = robots
        self._stop = threading.Event()
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> HostileServer:
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._handle(self.request)

        self._tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._tcp.daemon_threads = True
        self._tcp.allow_reuse_address = True
        self._tcp.request_queue_size = 256
        self._tcp.server_bind()
        self._tcp.server_activate()
        self._thread = threading.Thread(target=self._tcp.serve_forever, name="hostile-http", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._timer.cancel()
            self._tcp.shutdown()
            self._tcp.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._tcp.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def hits(self, path: str) -> int:
        with self._lock:
            return self._hits.get(path, 0)

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(5.0)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < _HEAD_LIMIT:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
        except (OSError, IndexError):
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
        with self._lock:
            self._hits[path] = self._hits.get(path, 0) + 1
        with contextlib.suppress(OSError):  # the client gave up (the fetcher's deadline): that is the point
            self._route(sock, path)

    def _misbehave(self, sock: socket.socket, pieces: object, pause: float) -> None:
        """Sends ``pieces`` (an iterator of bytes) with ``pause`` between them until the client leaves."""
        started = time.monotonic()
        for piece in pieces:  # type: ignore[attr-defined]
            if self._stop.is_set() or time.monotonic() - started > _MAX_MISBEHAVE_SECONDS:
                return
            sock.sendall(piece)
            time.sleep(pause)

    def _route(self, sock: socket.socket, path: str) -> None:
        if path == "/robots.txt" and self.robots is not None:
            ROBOTS[self.robots](self, sock, "")
            return
        if path.startswith("/img/"):
            sock.sendall(_jpeg_response(path.removeprefix("/img/")))
            return
        parts = path.split("/")
        if len(parts) < 4 or parts[1] != "b" or parts[2] not in BEHAVIOURS:
            sock.sendall(_response("404 Not Found", b"not found"))
            return
        BEHAVIOURS[parts[2]](self, sock, parts[3])


def _forever(piece: bytes):
    while True:
        yield piece


def _header_drip(server: HostileServer, sock: socket.socket, ident: str) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nX-Drip: ")
    server._misbehave(sock, _forever(b"a"), 0.1)


def _status_drip(server: HostileServer, sock: socket.socket, ident: str) -> None:
    server._misbehave(sock, (bytes([c]) for c in b"HTTP/1.1 200 OK" + b" " * 100000), 0.1)


def _continue_flood(server: HostileServer, sock: socket.socket, ident: str) -> None:
    server._misbehave(sock, _forever(b"HTTP/1.1 100 Continue\r\n\r\n"), 0.02)


def _silent(server: HostileServer, sock: socket.socket, ident: str) -> None:
    server._misbehave(sock, _forever(b""), 0.1)


def _reset(server: HostileServer, sock: socket.socket, ident: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def _raw(payload: bytes):
    return lambda server, sock, ident: sock.sendall(payload)


def _jpeg_with(*headers: tuple[str, str]):
    return lambda server, sock, ident: sock.sendall(_jpeg_response(f"b-{ident}", headers))


def _encoded(encoding: str, encode: object):
    def send(server: HostileServer, sock: socket.socket, ident: str) -> None:
        body = encode(distinct_jpeg(f"b-{ident}"))  # type: ignore[operator]
        sock.sendall(
            _response("200 OK", body, (("Content-Type", "image/jpeg"), ("Content-Encoding", encoding)))
        )

    return send


def _redirect(location: str):
    return lambda server, sock, ident: sock.sendall(
        _response("302 Found", b"", (("Location", location.replace("{id}", ident)),))
    )


def _stream_unbounded(server: HostileServer, sock: socket.socket, ident: str) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n")
    server._misbehave(sock, _forever(bytes(65536)), 0.0)


def _body(status: str, body: bytes, content_type: str = "image/jpeg"):
    return _raw(_response(status, body, (("Content-Type", content_type),)))


BEHAVIOURS = {
    "header-drip": _header_drip,
    "status-drip": _status_drip,
    "continue-flood": _continue_flood,
    "silent": _silent,
    "reset": _reset,
    "gzip-bomb": lambda server, sock, ident: sock.sendall(
        _response("200 OK", gzip_bomb(), (("Content-Type", "image/jpeg"), ("Content-Encoding", "gzip")))
    ),
    "gzip": _encoded("gzip", gzip.compress),
    "deflate": _encoded("deflate", zlib.compress),
    "brotli": _encoded("br", lambda data: data),
    "gzip-corrupt": _encoded("gzip", lambda data: b"\x1f\x8b\x08\x00" + data[:500]),
    "bad-status": _raw(b"HTTP/1.1 two hundred OK\r\n\r\n"),
    "not-http": _raw(b"SSH-2.0-OpenSSH_9.6\r\n"),
    "many-headers": _raw(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n"),
    "long-header": _raw(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n"),
    "close-early": _raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"\xff\xd8" * 50),
    "bad-chunked": _raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"),
    "length-huge": _raw(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"),
    "stream-unbounded": _stream_unbounded,
    "robots-none": _jpeg_with(("X-Robots-Tag", "none")),
    "robots-agent-none": _jpeg_with(("X-Robots-Tag", "img2dataset: none")),
    "not-found": _body("404 Not Found", b"gone", "text/plain"),
    "server-error": _body("500 Internal Server Error", b"oops", "text/plain"),
    "too-many-requests": _body("429 Too Many Requests", b"slow down", "text/plain"),
    "empty": _body("200 OK", b""),
    "html": _body("200 OK", b"<!doctype html><html><body>Click to enlarge</body></html>", "text/html"),
    "lying-jpeg": lambda server, sock, ident: sock.sendall(_response("200 OK", lying_jpeg())),
    "png-bomb": lambda server, sock, ident: sock.sendall(_response("200 OK", png_header(30000, 30000))),
    "truncated-jpeg": lambda server, sock, ident: sock.sendall(
        _response("200 OK", distinct_jpeg(f"t-{ident}", (640, 480))[:2500])
    ),
    "tiny-image": lambda server, sock, ident: sock.sendall(
        _response("200 OK", distinct_jpeg(f"tiny-{ident}", (100, 100)))
    ),
    "redirect-loop": lambda server, sock, ident: sock.sendall(
        _response("302 Found", b"", (("Location", f"/b/redirect-loop/{ident}"),))
    ),
    "redirect-metadata": _redirect("http://169.254.169.254/latest/meta-data/"),
    "redirect-invalid": _redirect("http://[::1/x"),
    "redirect-file": _redirect("file:///etc/passwd"),
    "redirect-iri": _redirect("/img/redirected café {id}.jpg"),
    "retry-after-huge": _raw(_response("429 Too Many Requests", b"", (("Retry-After", "1000000000"),))),
    "retry-after-garbage": _raw(_response("429 Too Many Requests", b"", (("Retry-After", "soon, maybe"),))),
    "retry-after-date": _raw(
        _response("429 Too Many Requests", b"", (("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"),))
    ),
    "retry-after-long": _raw(_response("503 Service Unavailable", b"", (("Retry-After", "9" * 5000),))),
}


def _robots_rules(disallow: str) -> bytes:
    return f"User-agent: *\nDisallow: {disallow}\n".encode()


def _huge_robots(server: HostileServer, sock: socket.socket, ident: str) -> None:
    body = _robots_rules("/b/") + b"# padding\n" * (1_000_000)  # 10 MB, rules first
    sock.sendall(_response("200 OK", body, (("Content-Type", "text/plain"),)))


def _drip_robots(server: HostileServer, sock: socket.socket, ident: str) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
    server._misbehave(sock, _forever(b"#"), 0.1)


ROBOTS = {
    "disallow-b": _raw(_response("200 OK", _robots_rules("/b/"), (("Content-Type", "text/plain"),))),
    "for-our-token": _raw(
        _response("200 OK", b"User-agent: img2dataset\nDisallow: /img/\n\nUser-agent: *\nAllow: /\n")
    ),
    "huge": _huge_robots,
    "drip": _drip_robots,
    "binary": _raw(_response("200 OK", bytes(range(256)) * 64 + b"\xff\xfe\x00Disallow /img/\x00")),
    "redirect-metadata": _redirect("http://169.254.169.254/robots.txt"),
    "redirect-loop": lambda server, sock, ident: sock.sendall(
        _response("302 Found", b"", (("Location", "/robots.txt"),))
    ),
    "server-error": _body("503 Service Unavailable", b"down", "text/plain"),
    "not-found": _body("404 Not Found", b"none", "text/plain"),
    "reset": _reset,
}
