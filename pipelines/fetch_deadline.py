"""A hard deadline for one download attempt, headers included: a watchdog shuts its sockets down.

A socket timeout only bounds each single wait; a server that drips one header byte per second, or sends
``100 Continue`` lines forever, never trips it. So every connection an attempt opens (redirect hops
included) is registered with the attempt, and one watchdog thread per process shuts those connections
down when the attempt's deadline passes: whatever the client is blocked in (TLS handshake, status line,
headers, body) then wakes up, and the fetcher reports ``fetch_timeout`` because the attempt says it
expired. The watchdog keeps a duplicate of each socket's descriptor, so it works for TLS sockets too
(``ssl`` wraps, and detaches, the original socket object). Linux keeps delivering data that arrives
after a shutdown, so a server that goes on dripping could still feed the reader: every read of an
attempt's sockets (``DeadlineSocket``, ``DeadlineSSLSocket``) therefore also checks the deadline.

Connections see their attempt through a thread-local (``current()``), set by ``Attempt`` as a context
manager around ``opener.open``: the urllib opener is shared by the fetch threads, attempts are not.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import ssl
import threading
import time
from typing import Any


class DeadlinePassed(Exception):
    """An attempt's deadline passed before a step could start (raised by the connector)."""


class Attempt:
    """One download attempt that must end by ``deadline`` (``time.monotonic`` seconds)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def add(self, sock: socket.socket) -> None:
        """Registers a connected socket; shuts it down at once when the deadline has already passed."""
        watched = socket.socket(fileno=os.dup(sock.fileno()))
        with self._lock:
            if not self.expired and not self._done:
                self._sockets.append(watched)
                return
        _shut(watched)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> Attempt:
        _LOCAL.attempt = self
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _LOCAL.attempt = None
        with self._lock:
            self._done = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _Watchdog:
    """One daemon thread with a heap of attempts by deadline; started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Attempt]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, attempt: Attempt) -> None:
        with self._wake:
            heapq.heappush(self._heap, (attempt.deadline, next(self._order), attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fetch-deadline", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, _, attempt = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
            attempt.expire()


_WATCHDOG = _Watchdog()
_LOCAL = threading.local()


def current() -> Attempt | None:
    """The attempt running on this thread, if any."""
    return getattr(_LOCAL, "attempt", None)


def _check() -> None:
    attempt = current()
    if attempt is not None and attempt.expired:
        raise TimeoutError("the attempt passed its deadline")


class _DeadlineReads:
    """Reads that fail once the running attempt has expired (before and after the wait)."""

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        _check()
        data = super().recv(*args, **kwargs)  # type: ignore[misc]
        _check()
        return data

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        _check()
        size = super().recv_into(*args, **kwargs)  # type: ignore[misc]
        _check()
        return size

    def read(self, *args: Any, **kwargs: Any) -> Any:  # what SSLSocket reads with
        _check()
        data = super().read(*args, **kwargs)  # type: ignore[misc]
        _check()
        return data


class DeadlineSocket(_DeadlineReads, socket.socket):
    """A plain socket whose reads honour the attempt's deadline."""


class DeadlineSSLSocket(_DeadlineReads, ssl.SSLSocket):
    """The TLS counterpart (``SSLContext.sslsocket_class``)."""


def tls_context() -> ssl.SSLContext:
    """The default verifying client context, with sockets that honour the attempt's deadline."""
    context = ssl.create_default_context()
    context.sslsocket_class = DeadlineSSLSocket
    return context


def deadline_connector(connect: Any) -> Any:
    """Wraps a ``socket.create_connection``-like function: connect within the attempt's time left, and
    register the socket with the attempt so the watchdog can end it."""

    def connector(
        address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT, *args: Any, **kwargs: Any
    ) -> socket.socket:
        attempt = current()
        if attempt is not None:
            left = attempt.remaining()
            if left <= 0:
                raise DeadlinePassed("the deadline passed before connecting")
            if timeout is socket._GLOBAL_DEFAULT_TIMEOUT or timeout is None or timeout > left:
                timeout = left
        plain = connect(address, timeout, *args, **kwargs)
        seconds = plain.gettimeout()
        sock = DeadlineSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        sock.settimeout(seconds)
        if attempt is not None:
            attempt.add(sock)
        return sock

    return connector
