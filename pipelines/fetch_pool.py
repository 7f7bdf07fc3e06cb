"""Keep-alive: reuse of HTTP(S) connections per host, and a short DNS cache, for the fetch opener.

urllib's handlers send ``Connection: close`` and open a new connection (DNS lookup, TCP and TLS
handshakes) for every request. ``ConnectionPool.open`` sends the request on an idle connection to the
same (scheme, host, port) when there is one, else on a new one made by the handler's connector (so the
address guard and the attempt's deadline still see every new connection); a connection goes back to
the pool only when its response was read to the end and the server did not ask to close it
(``release``). A reused connection that the server closed meanwhile fails before any response byte;
the request is then sent once more on a new connection (the request is a GET: nothing happened yet).

Bounds: ``max_idle_per_host`` idle connections per host and ``max_idle`` in all (the least recently
used go first), and none older than ``idle_seconds`` (servers drop idle keep-alive connections after
5-60 s). Every connection in use is registered with the attempt that uses it
(``pipelines.fetch_deadline``), so a deadline ends a reused connection as surely as a new one.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
import urllib.error
from collections import OrderedDict
from http import client as http_client
from typing import Any

from pipelines import fetch_deadline

DEFAULT_IDLE_SECONDS = 30.0
_STALE = (http_client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class ConnectionPool:
    """Idle keep-alive connections by (scheme, host:port); thread-safe."""

    def __init__(
        self, max_idle_per_host: int = 4, max_idle: int = 256, idle_seconds: float = DEFAULT_IDLE_SECONDS
    ) -> None:
        self._per_host = max_idle_per_host
        self._max = max_idle
        self._idle_seconds = idle_seconds
        self._idle: OrderedDict[tuple[str, str], list[tuple[float, Any]]] = OrderedDict()
        self._count = 0
        self._lock = threading.Lock()
        self.opened = 0  # new connections made (for tests and the benchmark)
        self.reused = 0

    def _take(self, key: tuple[str, str]) -> Any:
        now = time.monotonic()
        stale = []
        found = None
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                since, conn = idle.pop()
                self._count -= 1
                if now - since <= self._idle_seconds and not _dropped(conn):
                    found = conn
                    break
                stale.append(conn)
            if key in self._idle and not idle:
                del self._idle[key]
        for conn in stale:
            conn.close()
        return found

    def _put(self, key: tuple[str, str], conn: Any) -> None:
        evicted = []
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            idle.append((time.monotonic(), conn))
            self._count += 1
            if len(idle) > self._per_host:
                evicted.append(idle.pop(0)[1])
                self._count -= 1
            while self._count > self._max and self._idle:
                oldest_key, oldest = next(iter(self._idle.items()))
                evicted.append(oldest.pop(0)[1])
                self._count -= 1
                if not oldest:
                    del self._idle[oldest_key]
        for old in evicted:
            old.close()

    def idle(self) -> int:
        with self._lock:
            return self._count

    def open(self, handler: Any, make_connection: Any, req: Any, **kwargs: Any) -> http_client.HTTPResponse:
        """What ``AbstractHTTPHandler.do_open`` does, on a pooled connection and without ``Connection: close``."""
        key = (req.type, req.host)
        headers = dict(req.unredirected_hdrs)
        headers.update({k: v for k, v in req.headers.items() if k not in headers})
        headers = {name.title(): value for name, value in headers.items()}
        headers.pop("Connection", None)
        conn = self._take(key)
        while True:
            reused = conn is not None
            if conn is None:
                conn = make_connection(req.host, timeout=req.timeout, **kwargs)
            elif conn.sock is not None:
                conn.sock.settimeout(req.timeout)
                attempt = fetch_deadline.current()
                if attempt is not None:
                    attempt.add(conn.sock)
            try:
                conn.request(req.get_method(), req.selector, req.data, headers)
                response = conn.getresponse()
            except _STALE:
                conn.close()
                if reused:  # the server closed it while it was idle: once more on a new connection
                    conn = None
                    continue
                raise
            except OSError as error:
                conn.close()
                raise urllib.error.URLError(error) from None
            except BaseException:
                conn.close()
                raise
            break
        with self._lock:
            if reused:
                self.reused += 1
            else:
                self.opened += 1
        response.url = req.get_full_url()
        response.msg = response.reason
        response.pool_connection = (self, key, conn)
        return response


def _dropped(conn: Any) -> bool:
    """Whether an idle connection was closed (or written to) by the server: readable means EOF or junk."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def release(response: Any, reusable: bool) -> None:
    """Back to the pool when ``reusable`` and the response is finished with the connection left open;
    otherwise the connection is closed. Safe to call for responses that came from no pool."""
    entry = getattr(response, "pool_connection", None)
    if entry is None:
        return
    response.pool_connection = None
    pool, key, conn = entry
    attempt = fetch_deadline.current()
    finished = response.isclosed() or response.length == 0  # 3.11's read1 leaves a finished body open
    if reusable and finished and not response.will_close and not (attempt and attempt.expired):
        response.close()
        pool._put(key, conn)
    else:
        with contextlib.suppress(OSError):
            conn.close()
