"""Fetch stage: download each record's image over HTTP(S) (or ``file://`` when allowed), bounded and guarded.

``kept, rejects = records | FetchImages(FetchConfig(...))`` adds ``image_bytes`` and
``http_content_type`` to each kept record; every other record becomes a reject with one of these
stable reasons (counted as ``curation/fetch/<reason>``):

==========================  ====================================================================
``url_missing``             no URL (None, empty, not a string)
``url_invalid``             a URL urllib cannot parse (no host, bad port, bad IDNA label)
``url_unsupported_scheme``  not http/https/file (also a redirect to such a scheme)
``file_url_not_allowed``    ``file://`` without ``allow_file_urls``
``url_private_address``     the host (or any redirect hop) resolves to a non-public address
``http_error``              an HTTP error status; the detail starts with the code ("HTTP 404 …")
``fetch_timeout``           no progress within ``timeout``, or the attempt ran past ``deadline``
``fetch_failed``            DNS failure, connection refused/reset, broken HTTP, missing file
``too_many_redirects``      more than ``max_redirects`` hops (redirect loops end here)
``response_too_large``      declared or actual body above ``max_bytes`` (never read past it)
``robots_disallowed``       ``X-Robots-Tag`` forbids use (img2dataset's ``is_disallowed``)
==========================  ====================================================================

What is reused from img2dataset 1.47: its user-agent convention, its X-Robots-Tag parser
``img2dataset.downloader.is_disallowed`` and default directives, and the retry contract of
``download_image_with_retry`` (at most ``retries + 1`` attempts). Its ``download_image`` itself is not
called: it reads the whole body with no size bound, follows redirects anywhere and connects to any
address. Here the opener is ``net_guard.guarded_opener`` (every connection, so every redirect hop,
checked by the address guard; redirects counted and scheme-checked, their bodies never read) and
the body is read to at most ``max_bytes + 1`` bytes. Unlike img2dataset, only transient failures
are retried (timeouts, connection failures, HTTP 408/429/5xx): a 404 or a refusal will not change
on a second try.

Parallelism: I/O bound, so each DoFn instance owns a thread pool of ``threads`` workers and receives
batches of ``batch_size`` records (``BatchElements`` after a ``Reshuffle`` that breaks fusion with the
cheap text stages, so fetches spread over all workers). Worker threads only fetch; Beam Metrics and
outputs are emitted from the bundle's own thread (Metrics containers are thread-local).
"""

from __future__ import annotations

import functools
import mimetypes
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import client as http_client
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines import net_guard
from pipelines.records import REJECTS, Record, count_kept, make_reject

STAGE = "fetch"
URL_MISSING = "url_missing"
URL_INVALID = "url_invalid"
URL_UNSUPPORTED_SCHEME = "url_unsupported_scheme"
FILE_URL_NOT_ALLOWED = "file_url_not_allowed"
URL_PRIVATE_ADDRESS = net_guard.URL_PRIVATE_ADDRESS
HTTP_ERROR = "http_error"
FETCH_TIMEOUT = "fetch_timeout"
FETCH_FAILED = "fetch_failed"
TOO_MANY_REDIRECTS = "too_many_redirects"
RESPONSE_TOO_LARGE = "response_too_large"
ROBOTS_DISALLOWED = "robots_disallowed"

# img2dataset's browser-like user agent; the token in "(compatible; TOKEN; …)" is what sites name in
# "X-Robots-Tag: TOKEN: noai" to opt out of this crawler specifically.
_BROWSER_USER_AGENT = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:72.0) Gecko/20100101 Firefox/72.0"
_RETRYABLE_STATUS = frozenset({408, 429})
_CHUNK = 64 * 1024
_MAX_RETRIES = 10


@dataclass(frozen=True)
class FetchConfig:
    """Fetch settings. ``timeout``, ``retries``, user-agent token and X-Robots-Tag directives are
    img2dataset's defaults; ``max_bytes``/``deadline``/``max_redirects`` bound what one URL may cost.

    ``timeout``: seconds without progress (connect, each read), as urllib's timeout.
    ``deadline``: seconds one attempt may take in total, so a server trickling bytes cannot hold a thread.
    ``retries``: extra attempts after a transient failure (0..10); at most ``retries + 1`` attempts.
    ``max_bytes``: largest body accepted; a bigger one is refused from its Content-Length or cut off.
    ``allow_private_addresses``: turns the address guard off; ``allowed_networks`` instead lets only
    the given networks through (``("127.0.0.1/32",)`` for a local server, metadata stays refused).
    ``threads``: concurrent fetches per DoFn instance; ``batch_size`` records per batch (0 = 4 × threads).
    """

    timeout: float = 10.0
    deadline: float = 60.0
    retries: int = 2
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 10
    user_agent_token: str = "img2dataset"
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    allow_private_addresses: bool = False
    allowed_networks: tuple[str, ...] = ()
    allow_file_urls: bool = False
    threads: int = 16
    batch_size: int = 0

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.deadline <= 0:
            raise ValueError("FetchConfig: timeout and deadline must be positive seconds")
        if not 0 <= self.retries <= _MAX_RETRIES:
            raise ValueError(f"FetchConfig: retries must be between 0 and {_MAX_RETRIES}")
        if self.max_bytes <= 0 or self.max_redirects < 0 or self.threads <= 0 or self.batch_size < 0:
            raise ValueError(
                "FetchConfig: need max_bytes > 0, max_redirects >= 0, threads > 0, batch_size >= 0"
            )
        try:
            net_guard.parse_networks(self.allowed_networks)
        except ValueError as err:
            raise ValueError(f"FetchConfig: allowed_networks: {err}") from None
        # img2dataset's parser lower-cases what it reads from the header, so compare in lower case.
        object.__setattr__(self, "user_agent_token", self.user_agent_token.strip().lower())
        directives = tuple(d.strip().lower() for d in self.disallowed_header_directives)
        object.__setattr__(self, "disallowed_header_directives", directives)

    @property
    def user_agent(self) -> str:
        if not self.user_agent_token:
            return _BROWSER_USER_AGENT
        return f"{_BROWSER_USER_AGENT} (compatible; {self.user_agent_token}; +https://github.com/rom1504/img2dataset)"

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size or 4 * self.threads


@dataclass(frozen=True)
class FetchResult:
    """What one URL gave: the body and its content type, or a reason (with detail) and no body."""

    body: bytes | None = None
    content_type: str = ""
    reason: str | None = None
    detail: str = ""
    attempts: int = 1
    retryable: bool = False


class _ResponseTooLarge(Exception):
    pass


class _DeadlinePassed(Exception):
    pass


def fetch_url(
    url: Any, config: FetchConfig, opener: urllib.request.OpenerDirector | None = None
) -> FetchResult:
    """Fetches ``url`` with up to ``config.retries`` retries of transient failures; never raises for bad input."""
    opener = opener or build_opener(config)
    result = FetchResult(reason=URL_MISSING, detail="no url")
    for attempt in range(1, config.retries + 2):
        result = _fetch_once(url, config, opener)
        result = FetchResult(
            result.body, result.content_type, result.reason, result.detail, attempt, result.retryable
        )
        if result.reason is None or not result.retryable:
            break
    return result


def build_opener(config: FetchConfig) -> urllib.request.OpenerDirector:
    """The guarded opener ``config`` asks for (see ``net_guard.guarded_opener``)."""
    return net_guard.guarded_opener(
        config.allow_private_addresses, config.allowed_networks, config.max_redirects
    )


def _fetch_once(url: Any, config: FetchConfig, opener: urllib.request.OpenerDirector) -> FetchResult:
    if not isinstance(url, str) or not url.strip():
        return FetchResult(reason=URL_MISSING, detail="no url")
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        if not config.allow_file_urls:
            return FetchResult(reason=FILE_URL_NOT_ALLOWED, detail=url[:200])
        return _fetch_file(url, config)
    if scheme not in ("http", "https"):
        return FetchResult(reason=URL_UNSUPPORTED_SCHEME, detail=f"scheme {scheme or '(none)'!r}")
    invalid = _invalid_http_url(url)
    if invalid:
        return FetchResult(reason=URL_INVALID, detail=invalid)
    headers = {"User-Agent": config.user_agent}
    started = time.monotonic()
    try:
        request = urllib.request.Request(url, headers=headers)
        with opener.open(request, timeout=config.timeout) as response:
            if config.disallowed_header_directives and _is_disallowed()(
                response.headers, config.user_agent_token, list(config.disallowed_header_directives)
            ):
                return FetchResult(
                    reason=ROBOTS_DISALLOWED, detail=", ".join(response.headers.get_all("X-Robots-Tag", []))
                )
            declared = response.headers.get("Content-Length", "")
            if declared.strip().isdigit() and int(declared) > config.max_bytes:
                return FetchResult(reason=RESPONSE_TOO_LARGE, detail=f"Content-Length {int(declared)}")
            body = _read_bounded(response, config.max_bytes, started + config.deadline)
            content_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        return FetchResult(body=body, content_type=content_type)
    except Exception as err:  # classified below; an error type it does not know is re-raised there
        return _classify(err)


def _classify(err: Exception) -> FetchResult:
    """Maps an exception from one attempt to (reason, detail, retryable); re-raises what it does not know."""
    if isinstance(err, net_guard.AddressRefused):
        return FetchResult(reason=URL_PRIVATE_ADDRESS, detail=str(err))
    if isinstance(err, net_guard.TooManyRedirects):
        return FetchResult(reason=TOO_MANY_REDIRECTS, detail=str(err))
    if isinstance(err, net_guard.RedirectSchemeRefused):
        return FetchResult(reason=URL_UNSUPPORTED_SCHEME, detail=str(err))
    if isinstance(err, _ResponseTooLarge):
        return FetchResult(reason=RESPONSE_TOO_LARGE, detail=str(err))
    if isinstance(err, _DeadlinePassed):
        return FetchResult(reason=FETCH_TIMEOUT, detail=str(err), retryable=True)
    if isinstance(err, urllib.error.HTTPError):
        err.close()
        retryable = err.code >= 500 or err.code in _RETRYABLE_STATUS
        return FetchResult(reason=HTTP_ERROR, detail=f"HTTP {err.code} {err.reason}", retryable=retryable)
    if isinstance(err, urllib.error.URLError):
        cause = err.reason
        if isinstance(cause, net_guard.AddressRefused):
            return FetchResult(reason=URL_PRIVATE_ADDRESS, detail=str(cause))
        if isinstance(cause, TimeoutError):
            return FetchResult(reason=FETCH_TIMEOUT, detail=f"timeout: {cause}", retryable=True)
        # A name that does not exist will not exist on the next try; a DNS server that did not answer might.
        permanent = isinstance(cause, socket.gaierror) and cause.errno != socket.EAI_AGAIN
        return FetchResult(reason=FETCH_FAILED, detail=str(cause), retryable=not permanent)
    if isinstance(err, TimeoutError):
        return FetchResult(reason=FETCH_TIMEOUT, detail=f"timeout: {err}", retryable=True)
    if isinstance(err, OSError | http_client.HTTPException):
        return FetchResult(reason=FETCH_FAILED, detail=f"{type(err).__name__}: {err}", retryable=True)
    if isinstance(err, ValueError):  # urllib/http.client: malformed URL, bad port, bad IDNA label
        return FetchResult(reason=URL_INVALID, detail=f"{type(err).__name__}: {err}")
    raise err


def _invalid_http_url(url: str) -> str:
    """What is wrong with an http(s) URL before any connection is tried ("" when nothing)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - parsing the port is the check: out of range or not a number raises
    except ValueError as err:
        return f"bad port: {err}"
    return "" if parts.hostname else "no host"


def _read_bounded(response: Any, max_bytes: int, deadline: float) -> bytes:
    """Reads the body in chunks; refuses it past ``max_bytes`` and stops past ``deadline`` (monotonic)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise _DeadlinePassed(f"still reading after the deadline ({size} bytes)")
        # read1: whatever has arrived, so a slow sender cannot keep one read waiting past the deadline.
        chunk = response.read1(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise _ResponseTooLarge(f"body above {max_bytes} bytes")


def _fetch_file(url: str, config: FetchConfig) -> FetchResult:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        return FetchResult(reason=URL_INVALID, detail=f"file url with a remote host {parts.netloc!r}")
    path = urllib.request.url2pathname(parts.path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > config.max_bytes:
                return FetchResult(reason=RESPONSE_TOO_LARGE, detail=f"file of {size} bytes")
            body = handle.read(config.max_bytes + 1)
    except OSError as err:
        return FetchResult(reason=FETCH_FAILED, detail=f"{type(err).__name__}: {err}")
    if len(body) > config.max_bytes:  # the file grew after fstat
        return FetchResult(reason=RESPONSE_TOO_LARGE, detail=f"file above {config.max_bytes} bytes")
    return FetchResult(body=body, content_type=mimetypes.guess_type(path)[0] or "")


@functools.cache
def _is_disallowed() -> Any:
    # Imported on first use: importing img2dataset runs its package __init__, which loads its whole
    # distributed engine (5-13 s measured here), and albumentations checks online unless told not to.
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from img2dataset.downloader import is_disallowed

    return is_disallowed


class _FetchBatchFn(beam.DoFn):
    """Fetches a batch of records on the instance's thread pool; emits kept records and rejects."""

    def __init__(self, config: FetchConfig, stage: str) -> None:
        self._config = config
        self._stage = stage
        self._attempts = Metrics.counter(STAGE, "attempts")
        self._bytes = Metrics.counter(STAGE, "bytes")

    def setup(self) -> None:
        _is_disallowed()  # the slow img2dataset import happens here, once per worker, not inside a bundle
        self._opener = build_opener(self._config)
        self._pool = ThreadPoolExecutor(self._config.threads, thread_name_prefix="fetch")

    def process(self, batch: Iterable[Record]) -> Iterator[Any]:
        records = list(batch)
        results = self._pool.map(
            lambda record: fetch_url(record.get("url"), self._config, self._opener), records
        )
        for record, result in zip(records, results):
            self._attempts.inc(result.attempts)
            if result.reason is not None:
                yield beam.pvalue.TaggedOutput(
                    REJECTS, make_reject(record, self._stage, result.reason, result.detail)
                )
                continue
            self._bytes.inc(len(result.body or b""))
            count_kept(self._stage)
            yield {**record, "image_bytes": result.body, "http_content_type": result.content_type}

    def teardown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class FetchImages(beam.PTransform):
    """``kept, rejects = records | FetchImages(config)``: downloads each record's ``url``."""

    def __init__(self, config: FetchConfig | None = None, stage: str = STAGE) -> None:
        super().__init__()
        self._config = config or FetchConfig()
        self._stage = stage

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        size = self._config.effective_batch_size
        outputs = (
            records
            | "SpreadFetches" >> beam.Reshuffle()
            | "Batch" >> beam.BatchElements(min_batch_size=size, max_batch_size=size)
            | "Fetch"
            >> beam.ParDo(_FetchBatchFn(self._config, self._stage)).with_outputs(REJECTS, main="kept")
        )
        return outputs.kept, outputs[REJECTS]
