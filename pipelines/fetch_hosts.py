"""Politeness per host, shared by every fetch thread of a worker process: concurrency, rate, holds.

``with gates.slot(host, deadline):`` admits an attempt to ``host`` when (1) fewer than ``concurrency``
attempts to it are running, (2) at least ``1 / rate`` seconds passed since the last attempt to it
started (``rate`` 0: no rate limit), and (3) the host's hold has passed: a ``Retry-After`` answer puts
the whole host on hold (``hold(host, seconds)``), not only the URL that got it. An attempt that cannot
be admitted by ``deadline`` (``time.monotonic`` seconds) raises ``HostBusy`` at once rather than
waiting in vain, so the wait is part of the URL's ``--fetch_total_deadline``.

Memory is bounded: at most ``max_hosts`` hosts are tracked; the least recently used idle one is
forgotten first (a host with attempts running is never forgotten).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_MAX_HOSTS = 10_000


class HostBusy(Exception):
    """The host could not take another attempt before the URL's deadline."""


@dataclass
class _Host:
    running: int = 0
    next_start: float = 0.0  # the rate limit's earliest next start
    hold_until: float = 0.0  # a Retry-After's hold on the whole host


class HostGates:
    """Per-host admission (see the module docstring); thread-safe."""

    def __init__(self, concurrency: int, rate: float = 0.0, max_hosts: int = DEFAULT_MAX_HOSTS) -> None:
        if concurrency < 1 or rate < 0 or max_hosts < 1:
            raise ValueError("HostGates: need concurrency >= 1, rate >= 0, max_hosts >= 1")
        self._concurrency = concurrency
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._max_hosts = max_hosts
        self._hosts: OrderedDict[str, _Host] = OrderedDict()
        self._changed = threading.Condition()

    def _host(self, name: str) -> _Host:
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = _Host()
            while len(self._hosts) > self._max_hosts:
                idle = next((n for n, h in self._hosts.items() if h.running == 0 and n != name), None)
                if idle is None:
                    break
                del self._hosts[idle]
        self._hosts.move_to_end(name)
        return host

    @contextlib.contextmanager
    def slot(self, name: str, deadline: float) -> Iterator[None]:
        with self._changed:
            while True:
                host = self._host(name)
                now = time.monotonic()
                start = max(now, host.next_start, host.hold_until)
                if start > deadline:
                    raise HostBusy(_busy_detail(name, host, now))
                if host.running < self._concurrency and start <= now:
                    host.running += 1
                    host.next_start = now + self._interval
                    break
                wait = start - now if host.running < self._concurrency else deadline - now
                self._changed.wait(max(0.001, min(wait, deadline - now)))
                if time.monotonic() >= deadline:
                    raise HostBusy(_busy_detail(name, self._host(name), time.monotonic()))
        try:
            yield
        finally:
            with self._changed:
                self._host(name).running -= 1
                self._changed.notify_all()

    def hold(self, name: str, seconds: float) -> None:
        """Nobody starts an attempt to ``name`` for ``seconds`` (a ``Retry-After``)."""
        with self._changed:
            host = self._host(name)
            host.hold_until = max(host.hold_until, time.monotonic() + seconds)

    def tracked(self) -> int:
        with self._changed:
            return len(self._hosts)


def _busy_detail(name: str, host: _Host, now: float) -> str:
    if host.hold_until > now:
        return f"{name} asked to wait {host.hold_until - now:.1f} s more (Retry-After), past the deadline"
    return f"{name} had no free slot before the deadline ({host.running} attempts running)"
