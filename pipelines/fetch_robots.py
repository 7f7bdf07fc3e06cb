"""robots.txt, read once per host and honoured for the fetcher's token (``--robots_txt``).

RFC 9309's rules: a 2xx robots.txt is parsed (``urllib.robotparser``; only its first ``max_bytes``,
500 KiB by the RFC, are read, the rest is ignored); a 4xx other than 429 means there are no rules;
anything else (5xx, 429, a timeout, a connection failure, a redirect loop, a redirect to a refused
address) means the host cannot be read, and the RFC says to assume complete disallow then. The file is
fetched with the fetcher's own opener, so through the address guard at every hop, within its own
deadline (``robots_txt_deadline``), with the same user agent.

Verdicts are cached per (scheme, host, port) for ``ttl`` seconds, at most ``max_hosts`` of them (the
least recently used go first); threads asking about a host whose robots.txt is being read wait for that
one read (never longer than their own deadline) instead of reading it again.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from pipelines import fetch_body, fetch_deadline, fetch_pool

ALLOWED = "allowed"
DISALLOWED = "disallowed"
UNREACHABLE = "unreachable"
DEFAULT_TTL = 3600.0
DEFAULT_MAX_HOSTS = 10_000


@dataclass(frozen=True)
class RobotsVerdict:
    kind: str  # ALLOWED, DISALLOWED or UNREACHABLE
    detail: str = ""


@dataclass
class _Rules:
    parser: RobotFileParser | None  # None: no rules (4xx) or unreachable
    unreachable: str  # why it could not be read ("" when it could)
    expires: float


def robots_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/robots.txt"


def read_prefix(response: Any, max_bytes: int, deadline: float) -> bytes:
    """Up to ``max_bytes`` of the body (the rest is left unread), decoded if gzip/deflate."""
    encoding = fetch_body.content_encoding(response.headers)
    if encoding:
        return fetch_body.read_body(response, max_bytes, deadline, encoding)
    chunks, size = [], 0
    while size < max_bytes and time.monotonic() < deadline:
        chunk = response.read1(min(65536, max_bytes - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def fetch_rules(
    opener: urllib.request.OpenerDirector, url: str, user_agent: str, max_bytes: int, seconds: float
) -> _Rules:
    """Reads the robots.txt of ``url``'s host (see the module docstring for what each answer means)."""
    target = robots_url(url)
    attempt = fetch_deadline.Attempt(time.monotonic() + seconds)
    try:
        with attempt:
            request = urllib.request.Request(target, headers={"User-Agent": user_agent})
            with opener.open(request, timeout=seconds) as response:
                body = read_prefix(response, max_bytes, attempt.deadline)
                fetch_pool.release(response, reusable=False)
    except urllib.error.HTTPError as error:
        error.close()
        if 400 <= error.code < 500 and error.code != 429:
            return _Rules(None, "", 0.0)
        return _Rules(None, f"{target}: HTTP {error.code}", 0.0)
    except Exception as error:  # whatever the server made the client raise: the file is unreachable
        return _Rules(None, f"{target}: {type(error).__name__}: {error}"[:300], 0.0)
    if attempt.expired:
        return _Rules(None, f"{target}: no answer within {seconds:.0f} s", 0.0)
    parser = RobotFileParser(target)
    parser.parse(body.decode("utf-8", "replace").splitlines())
    return _Rules(parser, "", 0.0)


class RobotsCache:
    """Per-host robots.txt verdicts for one opener; thread-safe."""

    def __init__(
        self,
        opener: urllib.request.OpenerDirector,
        token: str,
        user_agent: str,
        max_bytes: int,
        seconds: float,
        ttl: float = DEFAULT_TTL,
        max_hosts: int = DEFAULT_MAX_HOSTS,
    ) -> None:
        self._opener = opener
        self._token = token or "*"
        self._user_agent = user_agent
        self._max_bytes = max_bytes
        self._seconds = seconds
        self._ttl = ttl
        self._max_hosts = max_hosts
        self._rules: OrderedDict[str, _Rules] = OrderedDict()
        self._reading: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.reads = 0  # robots.txt requests made (for tests)

    def verdict(self, url: str, deadline: float) -> RobotsVerdict:
        """Whether ``url`` may be fetched; waits at most until ``deadline`` for another thread's read."""
        host = robots_url(url)
        while True:
            with self._lock:
                rules = self._rules.get(host)
                if rules is not None and rules.expires > time.monotonic():
                    self._rules.move_to_end(host)
                    break
                event = self._reading.get(host)
                if event is None:
                    event = self._reading[host] = threading.Event()
                    mine = True
                else:
                    mine = False
            if mine:
                rules = _Rules(None, f"{host}: not read", 0.0)
                try:
                    rules = self._read(url)
                finally:  # waiters are woken whatever happened to the read
                    with self._lock:
                        self._rules[host] = rules
                        self._rules.move_to_end(host)
                        while len(self._rules) > self._max_hosts:
                            self._rules.popitem(last=False)
                        self._reading.pop(host).set()
                break
            if not event.wait(max(0.0, deadline - time.monotonic())):
                return RobotsVerdict(UNREACHABLE, f"{host}: still being read when the deadline passed")
        if rules.unreachable:
            return RobotsVerdict(UNREACHABLE, rules.unreachable)
        if rules.parser is not None and not rules.parser.can_fetch(self._token, url):
            return RobotsVerdict(DISALLOWED, f"{host} disallows {urlsplit(url).path[:200]} for {self._token}")
        return RobotsVerdict(ALLOWED)

    def _read(self, url: str) -> _Rules:
        with self._lock:
            self.reads += 1
        rules = fetch_rules(self._opener, url, self._user_agent, self._max_bytes, self._seconds)
        rules.expires = time.monotonic() + self._ttl
        return rules
