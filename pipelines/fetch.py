"""Fetch stage: download each record's image over HTTP(S) (or ``file://`` when allowed), bounded and guarded.

``kept, rejects = records | FetchImages(FetchConfig(...))`` adds ``image_bytes`` and
``http_content_type`` to each kept record; every other record becomes a reject with one of these
stable reasons (counted as ``curation/fetch/<reason>``):

==========================  ====================================================================
``url_missing``             no URL (None, empty, not a string)
``url_invalid``             not a URL (broken brackets, no host, bad port, bad IDNA host, control
                            characters; also a redirect to such a thing); see ``filters.urls``
``url_too_long``            longer than ``max_url_chars``
``url_unsupported_scheme``  not http/https/file (also a redirect to such a scheme)
``file_url_not_allowed``    ``file://`` without ``allow_file_urls``
``file_url_outside_root``   a ``file://`` path (symlinks resolved) outside ``file_url_root``
``file_not_regular``        a ``file://`` path that is a FIFO, device or folder (never opened blocking)
``url_private_address``     the host (or any redirect hop) resolves to a non-public address
``http_error``              an HTTP error status; the detail starts with the code ("HTTP 404 …")
``response_malformed``      not valid HTTP: bad status line, over-long or too many header lines
``fetch_timeout``           no progress within ``timeout``, or the attempt ran past ``deadline``
                            (status line and headers included: a watchdog ends the connection)
``fetch_failed``            DNS failure, connection refused/reset/closed early, broken chunking,
                            missing file, any other error of the exchange (its type in the detail)
``too_many_redirects``      more than ``max_redirects`` hops (redirect loops end here)
``response_too_large``      declared, actual or decoded body above ``max_bytes`` (never read past it)
``content_encoding_unsupported``  a ``Content-Encoding`` other than gzip/deflate/identity
``content_encoding_invalid``      a gzip/deflate body that does not decode
``robots_disallowed``       ``X-Robots-Tag`` forbids use (img2dataset's ``is_disallowed``)
==========================  ====================================================================

URLs are normalised first (``filters.urls.normalize_url``: IRIs percent-encoded, spaces escaped,
credentials dropped). ``fetch_url`` never raises for anything the URL or the server does.

What is reused from img2dataset 1.47: its user-agent convention, its X-Robots-Tag parser
``img2dataset.downloader.is_disallowed`` and default directives, and the retry contract of
``download_image_with_retry`` (at most ``retries + 1`` attempts). Its ``download_image`` itself is not
called: it reads the whole body with no size bound, follows redirects anywhere and connects to any
address. Here the opener is ``net_guard.guarded_opener`` (every connection, so every redirect hop,
checked by the address guard; redirects counted and scheme-checked, their bodies never read) and
the body is read to at most ``max_bytes + 1`` bytes. Unlike img2dataset, only transient failures
are retried (timeouts, connection failures, HTTP 408/429/5xx): a 404 or a refusal will not change
on a second try. Time: each attempt ends by ``deadline`` (``pipelines.fetch_deadline``), and all
attempts of one URL together by ``total_deadline``.

Parallelism: I/O bound, so each DoFn instance owns a thread pool of ``threads`` workers and receives
batches of ``batch_size`` records (``BatchElements`` after a ``Reshuffle`` that breaks fusion with the
cheap text stages, so fetches spread over all workers). Worker threads only fetch; Beam Metrics and
outputs are emitted from the bundle's own thread (Metrics containers are thread-local).
"""

from __future__ import annotations

import functools
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

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters import urls
from pipelines import fetch_body, fetch_deadline, net_guard
from pipelines.fetch_file import FILE_NOT_REGULAR, FILE_URL_OUTSIDE_ROOT, read_file_url
from pipelines.records import REJECTS, Record, count_kept, make_reject

__all__ = [
    "FILE_NOT_REGULAR",
    "FILE_URL_OUTSIDE_ROOT",
    "FetchConfig",
    "FetchImages",
    "FetchResult",
    "fetch_url",
]

STAGE = "fetch"
URL_MISSING = urls.URL_MISSING
URL_INVALID = urls.URL_INVALID
URL_TOO_LONG = urls.URL_TOO_LONG
URL_UNSUPPORTED_SCHEME = urls.URL_UNSUPPORTED_SCHEME
FILE_URL_NOT_ALLOWED = "file_url_not_allowed"
URL_PRIVATE_ADDRESS = net_guard.URL_PRIVATE_ADDRESS
HTTP_ERROR = "http_error"
RESPONSE_MALFORMED = "response_malformed"
FETCH_TIMEOUT = "fetch_timeout"
FETCH_FAILED = "fetch_failed"
TOO_MANY_REDIRECTS = "too_many_redirects"
RESPONSE_TOO_LARGE = "response_too_large"
CONTENT_ENCODING_UNSUPPORTED = "content_encoding_unsupported"
CONTENT_ENCODING_INVALID = "content_encoding_invalid"
ROBOTS_DISALLOWED = "robots_disallowed"

# img2dataset's browser-like user agent; the token in "(compatible; TOKEN; …)" is what sites name in
# "X-Robots-Tag: TOKEN: noai" to opt out of this crawler specifically.
_BROWSER_USER_AGENT = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:72.0) Gecko/20100101 Firefox/72.0"
_RETRYABLE_STATUS = frozenset({408, 429})
_MAX_RETRIES = 10


@dataclass(frozen=True)
class FetchConfig:
    """Fetch settings. ``timeout``, ``retries``, user-agent token and X-Robots-Tag directives are
    img2dataset's defaults (plus ``none``, which means noindex + nofollow); ``max_bytes``/``deadline``/
    ``total_deadline``/``max_redirects`` bound what one URL may cost.

    ``timeout``: seconds without progress (connect, each read), as urllib's timeout.
    ``deadline``: seconds one attempt may take in total, from connecting to the last body byte, status
    line, headers and ``100 Continue`` lines included (a watchdog shuts the connection down).
    ``total_deadline``: seconds all attempts of one URL may take together, retries included; a retry
    gets what is left of it. So one URL holds a fetch thread at most ``total_deadline`` seconds (plus
    the system resolver's own DNS timeout, which no socket option reaches).
    ``retries``: extra attempts after a transient failure (0..10); at most ``retries + 1`` attempts.
    ``max_bytes``: largest body accepted, after undoing gzip/deflate; a bigger one is refused from its
    Content-Length or cut off. ``max_url_chars``: longer URLs are refused (``url_too_long``).
    ``allow_private_addresses``: turns the address guard off; ``allowed_networks`` instead lets only
    the given networks through (``("127.0.0.1/32",)`` for a local server); the cloud metadata addresses
    stay refused unless named exactly (``169.254.169.254/32``), even inside ``0.0.0.0/0``.
    ``allow_file_urls``: accept ``file://`` URLs, only for regular files under ``file_url_root``.
    ``threads``: concurrent fetches per DoFn instance; ``batch_size`` records per batch (0 = 4 × threads).
    """

    timeout: float = 10.0
    deadline: float = 60.0
    total_deadline: float = 90.0
    retries: int = 2
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 10
    max_url_chars: int = urls.DEFAULT_MAX_URL_CHARS
    user_agent_token: str = "img2dataset"
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex", "none")
    allow_private_addresses: bool = False
    allowed_networks: tuple[str, ...] = ()
    allow_file_urls: bool = False
    file_url_root: str = ""
    threads: int = 16
    batch_size: int = 0

    def __post_init__(self) -> None:
        if min(self.timeout, self.deadline, self.total_deadline) <= 0:
            raise ValueError("FetchConfig: timeout, deadline and total_deadline must be positive seconds")
        if not 0 <= self.retries <= _MAX_RETRIES:
            raise ValueError(f"FetchConfig: retries must be between 0 and {_MAX_RETRIES}")
        if self.max_bytes <= 0 or self.max_redirects < 0 or self.threads <= 0 or self.batch_size < 0:
            raise ValueError(
                "FetchConfig: need max_bytes > 0, max_redirects >= 0, threads > 0, batch_size >= 0"
            )
        if self.max_url_chars < 16:
            raise ValueError("FetchConfig: max_url_chars must be at least 16")
        if self.allow_file_urls and not os.path.isdir(self.file_url_root or ""):
            raise ValueError("FetchConfig: allow_file_urls needs file_url_root, an existing folder")
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


def fetch_url(
    url: Any, config: FetchConfig, opener: urllib.request.OpenerDirector | None = None
) -> FetchResult:
    """Fetches ``url`` with up to ``config.retries`` retries of transient failures, all within
    ``config.total_deadline``; never raises for bad input or a misbehaving server."""
    target = urls.normalize_url(url, config.max_url_chars)
    if isinstance(target, urls.UrlProblem):
        return FetchResult(reason=target.reason, detail=target.detail)
    if target.scheme == "file":
        if not config.allow_file_urls:
            return FetchResult(reason=FILE_URL_NOT_ALLOWED, detail=target.url[:200])
        body, content_type, reason, detail = read_file_url(target.url, config.file_url_root, config.max_bytes)
        return FetchResult(body, content_type, reason, detail)
    opener = opener or build_opener(config)
    _is_disallowed()  # its first import takes seconds: not on any attempt's clock
    end = time.monotonic() + config.total_deadline
    result = FetchResult(reason=FETCH_TIMEOUT, detail="no time left")
    for attempt in range(1, config.retries + 2):
        left = end - time.monotonic()
        if left <= 0:
            break
        result = _fetch_once(target.url, config, opener, min(config.deadline, left))
        result = FetchResult(
            result.body, result.content_type, result.reason, result.detail, attempt, result.retryable
        )
        if result.reason is None or not result.retryable:
            break
    return result


def build_opener(config: FetchConfig) -> urllib.request.OpenerDirector:
    """The guarded opener ``config`` asks for (see ``net_guard.guarded_opener``), every connection
    under the deadline of the attempt that opens it."""
    return net_guard.guarded_opener(
        config.allow_private_addresses,
        config.allowed_networks,
        config.max_redirects,
        wrap_connector=fetch_deadline.deadline_connector,
        tls_context=fetch_deadline.tls_context(),
    )


def _fetch_once(
    url: str, config: FetchConfig, opener: urllib.request.OpenerDirector, seconds: float
) -> FetchResult:
    started = time.monotonic()
    attempt = fetch_deadline.Attempt(started + seconds)
    try:
        with attempt:
            result = _exchange(url, config, opener, attempt.deadline)
    except MemoryError:
        raise
    except Exception as err:  # whatever the server made the client raise: classified, never re-raised
        result = _classify(err)
    if attempt.expired:
        return FetchResult(
            reason=FETCH_TIMEOUT, detail=f"attempt passed its {seconds:.1f} s deadline", retryable=True
        )
    return result


def _exchange(
    url: str, config: FetchConfig, opener: urllib.request.OpenerDirector, deadline: float
) -> FetchResult:
    request = urllib.request.Request(url, headers={"User-Agent": config.user_agent})
    with opener.open(request, timeout=config.timeout) as response:
        if config.disallowed_header_directives and _is_disallowed()(
            response.headers, config.user_agent_token, list(config.disallowed_header_directives)
        ):
            return FetchResult(
                reason=ROBOTS_DISALLOWED, detail=", ".join(response.headers.get_all("X-Robots-Tag", []))
            )
        encoding = fetch_body.content_encoding(response.headers)
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > config.max_bytes:
            return FetchResult(reason=RESPONSE_TOO_LARGE, detail=f"Content-Length {int(declared)}")
        body = fetch_body.read_body(response, config.max_bytes, deadline, encoding)
        content_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return FetchResult(body=body, content_type=content_type)


_PERMANENT = (
    (net_guard.AddressRefused, URL_PRIVATE_ADDRESS),
    (net_guard.TooManyRedirects, TOO_MANY_REDIRECTS),
    (net_guard.RedirectSchemeRefused, URL_UNSUPPORTED_SCHEME),
    (net_guard.RedirectInvalid, URL_INVALID),
    (fetch_body.ResponseTooLarge, RESPONSE_TOO_LARGE),
    (fetch_body.EncodingUnsupported, CONTENT_ENCODING_UNSUPPORTED),
    (fetch_body.EncodingInvalid, CONTENT_ENCODING_INVALID),
)


def _classify(err: Exception) -> FetchResult:
    """Maps an exception from one attempt to (reason, detail, retryable)."""
    for kind, reason in _PERMANENT:
        if isinstance(err, kind):
            return FetchResult(reason=reason, detail=str(err)[:300])
    if isinstance(err, fetch_body.BodyDeadlinePassed | fetch_deadline.DeadlinePassed):
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
        return FetchResult(reason=FETCH_FAILED, detail=str(cause)[:300], retryable=not permanent)
    if isinstance(err, TimeoutError):
        return FetchResult(reason=FETCH_TIMEOUT, detail=f"timeout: {err}", retryable=True)
    if isinstance(err, http_client.RemoteDisconnected | http_client.IncompleteRead | OSError):
        return FetchResult(reason=FETCH_FAILED, detail=f"{type(err).__name__}: {err}"[:300], retryable=True)
    if isinstance(err, http_client.HTTPException):  # bad status line, header line too long, > 100 headers
        return FetchResult(reason=RESPONSE_MALFORMED, detail=f"{type(err).__name__}: {err}"[:300])
    # Anything else the exchange raised (a ValueError deep in http.client on odd bytes, ...): the server's
    # doing, not an infrastructure failure, so a reason with the error's type rather than a failed bundle.
    return FetchResult(reason=FETCH_FAILED, detail=f"{type(err).__name__}: {err}"[:300])


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
