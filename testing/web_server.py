"""A local HTTP server for the demo and the tests: the pool's images plus the web's bad behaviour.

``with DemoServer(images_dir) as server: server.url("/images/x.jpg")`` serves on 127.0.0.1 (on a free
port unless ``port`` is given) from a background thread. Every request is counted per path (``server.hits("/flaky/a")``) so
tests can assert how often the fetcher tried. Endpoints:

====================================  ==============================================================
``/images/<name>``                    a file from ``images_dir`` (content type from the extension)
``/sample.jpg``                       a small valid JPEG
``/404``                              404 Not Found (so is any unknown path)
``/html``                             an HTML page with status 200, as "image" URLs often return
``/huge``                             200 declaring a ``huge_bytes`` Content-Length, then streaming it
``/huge-stream``                      200 streaming ``huge_bytes`` with no Content-Length
``/redirect-loop``                    302 to itself, forever
``/redirect-chain/<n>``               exactly n redirects, then the sample JPEG
``/redirect?to=<url>``                302 to any url
``/redirect-to-metadata``             302 to http://169.254.169.254/latest/meta-data/
``/slow``                             sleeps ``slow_seconds`` before answering
``/trickle``                          200 sending the sample one byte every 0.2 s
``/robots``                           the sample JPEG with ``X-Robots-Tag: noai``
``/robots-other-agent``               the sample JPEG with ``X-Robots-Tag: otherbot: noai``
``/flaky/<id>``                       503 on the first request for that id, then the sample JPEG
``/dead``                             503, always
``/reset``                            closes the connection without answering
====================================  ==============================================================
"""

from __future__ import annotations

import collections
import contextlib
import io
import mimetypes
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

METADATA_URL = "http://169.254.169.254/latest/meta-data/"
HTML_PAGE = (
    b"<!doctype html><html><head><title>Photo</title></head><body><p>Click to enlarge</p></body></html>"
)
_STREAM_CHUNK = b"\0" * 65536


def sample_jpeg() -> bytes:
    """A 320×240 JPEG, the same bytes every time."""
    image = Image.new("RGB", (320, 240), (200, 60, 40))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


class PortUnavailable(OSError):
    """The requested port cannot be bound (in use, or privileged)."""


class DemoServer:
    """Threaded HTTP server on 127.0.0.1:<free port>; a context manager that starts and stops it."""

    def __init__(
        self,
        images_dir: str | Path | None = None,
        *,
        port: int = 0,
        slow_seconds: float = 5.0,
        huge_bytes: int = 128 * 1024 * 1024,
        latency_seconds: float = 0.0,
        keep_alive: bool = False,
        rate_limit: float = 0.0,
        robots_txt: str | None = None,
        connect_latency_seconds: float = 0.0,
    ) -> None:
        self.images_dir = Path(images_dir).resolve() if images_dir is not None else None
        self.port = port  # 0: any free port
        self.slow_seconds = slow_seconds
        self.huge_bytes = huge_bytes
        self.latency_seconds = latency_seconds  # added to every request, like a far-away web server
        self.keep_alive = keep_alive
        self.rate_limit = rate_limit  # requests per second /limited/ serves before it answers 429
        self.robots_txt = robots_txt
        self.connect_latency_seconds = connect_latency_seconds  # a far-away server's TCP + TLS handshakes
        self.connections = 0
        self.max_in_flight = 0
        self.rate_limited = 0  # 429s /limited/ sent
        self._in_flight = 0
        self._limited_starts: collections.deque[float] = collections.deque()
        self.sample = sample_jpeg()
        self._hits: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> DemoServer:
        protocol = "HTTP/1.1" if self.keep_alive else "HTTP/1.0"
        handler = type("BoundHandler", (_Handler,), {"demo": self, "protocol_version": protocol})
        try:
            self._httpd = _Server(("127.0.0.1", self.port), handler)
        except OSError as error:
            raise PortUnavailable(f"cannot serve on 127.0.0.1:{self.port} ({error.strerror})") from None
        self._httpd.daemon_threads = True  # a /slow request must not hold up shutdown
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="demo-http", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("DemoServer is not running: use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def hits(self, path: str) -> int:
        """How many requests arrived for ``path`` (query string ignored)."""
        with self._lock:
            return self._hits[path]

    def total_hits(self) -> int:
        with self._lock:
            return sum(self._hits.values())

    def count(self, path: str) -> int:
        with self._lock:
            self._hits[path] += 1
            return self._hits[path]

    def enter(self, opened_connection: bool = False) -> None:
        with self._lock:
            if opened_connection:
                self.connections += 1
            else:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def over_rate(self) -> bool:
        """Whether a /limited/ request now exceeds ``rate_limit`` requests in the last second."""
        now = time.monotonic()
        with self._lock:
            while self._limited_starts and now - self._limited_starts[0] > 1.0:
                self._limited_starts.popleft()
            if len(self._limited_starts) >= self.rate_limit:
                self.rate_limited += 1
                return True
            self._limited_starts.append(now)
            return False


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a fetcher opening 16+ connections at once overflows it,
    # and each dropped SYN costs the client a 1 s retransmit.
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    demo: DemoServer
    server_version = "DemoServer/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: thousands of requests would bury the demo's own progress lines."""

    def setup(self) -> None:
        super().setup()
        self.demo.enter(opened_connection=True)
        if self.demo.connect_latency_seconds:
            time.sleep(self.demo.connect_latency_seconds)

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        self.demo.count(path)
        self.demo.enter()
        try:
            if self.demo.latency_seconds:
                time.sleep(self.demo.latency_seconds)
            # The client may stop reading early (a bounded read of /huge does exactly that).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._route(path, urllib.parse.parse_qs(parsed.query))
        finally:
            self.demo.leave()

    def _route(self, path: str, query: dict[str, list[str]]) -> None:
        demo = self.demo
        if path.startswith("/images/"):
            self._serve_file(path.removeprefix("/images/"))
        elif path == "/sample.jpg":
            self._send(200, demo.sample, "image/jpeg")
        elif path == "/html":
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
        elif path in ("/huge", "/huge-stream"):
            self._stream_huge(declare_length=path == "/huge")
        elif path == "/redirect-loop":
            self._redirect("/redirect-loop")
        elif path.startswith("/redirect-chain/") and path.rsplit("/", 1)[1].isdigit():
            left = int(path.rsplit("/", 1)[1])
            if left == 0:
                self._send(200, demo.sample, "image/jpeg")
            else:
                self._redirect(f"/redirect-chain/{left - 1}" if left > 1 else "/sample.jpg")
        elif path == "/redirect" and query.get("to"):
            self._redirect(query["to"][0])
        elif path == "/redirect-to-metadata":
            self._redirect(METADATA_URL)
        elif path == "/slow":
            time.sleep(demo.slow_seconds)
            self._send(200, demo.sample, "image/jpeg")
        elif path == "/trickle":
            self._trickle()
        elif path == "/robots":
            self._send(200, demo.sample, "image/jpeg", {"X-Robots-Tag": "noai"})
        elif path == "/robots-other-agent":
            self._send(200, demo.sample, "image/jpeg", {"X-Robots-Tag": "otherbot: noai"})
        elif path.startswith("/flaky/"):
            if demo.hits(path) == 1:
                self._send(503, b"try again", "text/plain")
            else:
                self._send(200, demo.sample, "image/jpeg")
        elif path == "/dead":
            self._send(503, b"down", "text/plain")
        elif path.startswith("/retry-after/") and path.count("/") == 3:
            value = urllib.parse.unquote(path.split("/")[2])
            if demo.hits(path) == 1:
                self._send(429, b"slow down", "text/plain", {"Retry-After": value})
            else:
                self._send(200, demo.sample, "image/jpeg")
        elif path.startswith("/limited/"):
            if demo.over_rate():
                self._send(429, b"slow down", "text/plain", {"Retry-After": "1"})
            else:
                self._serve_file(path.removeprefix("/limited/"))
        elif path == "/robots.txt" and demo.robots_txt is not None:
            self._send(200, demo.robots_txt.encode(), "text/plain")
        elif path == "/reset":
            self.close_connection = True
            self.connection.close()
        else:
            self._send(404, b"not found", "text/plain")

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _serve_file(self, name: str) -> None:
        root = self.demo.images_dir
        target = (root / urllib.parse.unquote(name)).resolve() if root is not None else None
        if target is None or target.parent != root or not target.is_file():
            self._send(404, b"not found", "text/plain")
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(200, target.read_bytes(), content_type)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream_huge(self, declare_length: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        if declare_length:
            self.send_header("Content-Length", str(self.demo.huge_bytes))
        else:  # the body ends when the connection does
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        sent = 0
        while sent < self.demo.huge_bytes:
            chunk = _STREAM_CHUNK[: self.demo.huge_bytes - sent]
            self.wfile.write(chunk)
            sent += len(chunk)

    def _trickle(self) -> None:
        body = self.demo.sample
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for offset in range(len(body)):
            self.wfile.write(body[offset : offset + 1])
            self.wfile.flush()
            time.sleep(0.2)
