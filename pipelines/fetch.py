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

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters import urls
from filters.decision import Reject
from pipelines.fetch_attempt import FetchSession, fetch_once, is_disallowed, shared_session
from pipelines.fetch_config import (
    CONTENT_ENCODING_INVALID,
    CONTENT_ENCODING_UNSUPPORTED,
    DEFAULT_OPT_OUT_DIRECTIVES,
    FETCH_FAILED,
    FETCH_TIMEOUT,
    FILE_URL_NOT_ALLOWED,
    HOST_BUSY,
    HTTP_ERROR,
    RESPONSE_MALFORMED,
    RESPONSE_TOO_LARGE,
    ROBOTS_DISALLOWED,
    ROBOTS_TXT_DISALLOWED,
    ROBOTS_TXT_UNREACHABLE,
    STAGE,
    TOO_MANY_REDIRECTS,
    URL_INVALID,
    URL_MISSING,
    URL_PRIVATE_ADDRESS,
    URL_TOO_LONG,
    URL_UNSUPPORTED_SCHEME,
    FetchConfig,
    FetchResult,
)
from pipelines.fetch_file import FILE_NOT_REGULAR, FILE_URL_OUTSIDE_ROOT, read_file_url
from pipelines.fetch_hosts import HostBusy
from pipelines.fetch_retry import backoff_seconds
from pipelines.fetch_robots import DISALLOWED, UNREACHABLE
from pipelines.records import Record
from pipelines.rule_stage import RoutingDoFn, apply_rule_stage

__all__ = [
    "CONTENT_ENCODING_INVALID",
    "CONTENT_ENCODING_UNSUPPORTED",
    "DEFAULT_OPT_OUT_DIRECTIVES",
    "FETCH_FAILED",
    "FETCH_TIMEOUT",
    "FILE_NOT_REGULAR",
    "FILE_URL_NOT_ALLOWED",
    "FILE_URL_OUTSIDE_ROOT",
    "HOST_BUSY",
    "HTTP_ERROR",
    "RESPONSE_MALFORMED",
    "RESPONSE_TOO_LARGE",
    "ROBOTS_DISALLOWED",
    "ROBOTS_TXT_DISALLOWED",
    "ROBOTS_TXT_UNREACHABLE",
    "STAGE",
    "TOO_MANY_REDIRECTS",
    "URL_INVALID",
    "URL_MISSING",
    "URL_PRIVATE_ADDRESS",
    "URL_TOO_LONG",
    "URL_UNSUPPORTED_SCHEME",
    "FetchConfig",
    "FetchImages",
    "FetchResult",
    "FetchSession",
    "fetch_url",
    "is_disallowed",
]


def fetch_url(url: Any, config: FetchConfig, session: FetchSession | None = None) -> FetchResult:
    """Fetches ``url`` with up to ``config.retries`` retries of transient failures, all within
    ``config.total_deadline`` (waits for robots.txt, host slots, backoff and Retry-After included);
    never raises for bad input or a misbehaving server."""
    target = urls.normalize_url(url, config.max_url_chars)
    if isinstance(target, urls.UrlProblem):
        return FetchResult(reason=target.reason, detail=target.detail)
    if target.scheme == "file":
        if not config.allow_file_urls:
            return FetchResult(reason=FILE_URL_NOT_ALLOWED, detail=target.url[:200])
        body, content_type, reason, detail = read_file_url(target.url, config.file_url_root, config.max_bytes)
        return FetchResult(body, content_type, reason, detail)
    session = session or shared_session(config)
    is_disallowed()  # its first import takes seconds: not on any attempt's clock
    end = time.monotonic() + config.total_deadline
    if session.robots is not None:
        verdict = session.robots.verdict(target.url, end)
        if verdict.kind in (DISALLOWED, UNREACHABLE):
            reason = ROBOTS_TXT_DISALLOWED if verdict.kind == DISALLOWED else ROBOTS_TXT_UNREACHABLE
            return FetchResult(reason=reason, detail=verdict.detail, attempts=0)
    host = urlsplit(target.url).netloc.lower()
    result = FetchResult(reason=FETCH_TIMEOUT, detail="no time left", attempts=0)
    for attempt in range(1, config.retries + 2):
        started = time.monotonic()
        if end - started <= 0:
            break
        try:
            with session.gates.slot(host, end):
                result = fetch_once(
                    target.url, config, session.opener, min(config.deadline, end - time.monotonic())
                )
        except HostBusy as busy:  # the host could not take this attempt in time: the last result stands
            if attempt == 1:
                result = FetchResult(reason=HOST_BUSY, detail=str(busy), attempts=0)
            else:
                result = replace(result, detail=f"{result.detail}; no retry: {busy}"[:500])
            break
        result = replace(result, attempts=attempt)
        if result.reason is None or not result.retryable or attempt > config.retries:
            break
        # Space attempts at least the backoff apart; a Retry-After holds the whole host (HostGates).
        pause = backoff_seconds(target.url, attempt, config.backoff_base, config.backoff_cap)
        pause = max(0.0, pause - (time.monotonic() - started))
        asked = result.retry_after if config.retry_after else None
        if asked is not None:
            session.gates.hold(host, asked)
        if time.monotonic() + max(pause, asked or 0.0) >= end:
            wait = max(pause, asked or 0.0)
            result = replace(
                result, detail=f"{result.detail}; no retry: a {wait:.0f} s wait would pass the total deadline"
            )
            break
        time.sleep(pause)
    return result


class _FetchBatchFn(RoutingDoFn):
    """Fetches a batch of records on the instance's thread pool; emits kept records and rejects."""

    def __init__(self, config: FetchConfig, stage: str) -> None:
        self._config = config
        self.stage = stage
        self._attempts = Metrics.counter(STAGE, "attempts")
        self._bytes = Metrics.counter(STAGE, "bytes")

    def setup(self) -> None:
        is_disallowed()  # the slow img2dataset import happens here, once per worker, not inside a bundle
        self._session = shared_session(self._config)
        self._pool = ThreadPoolExecutor(self._config.threads, thread_name_prefix="fetch")

    def process(self, batch: Iterable[Record]) -> Iterator[Any]:
        records = list(batch)
        results = self._pool.map(
            lambda record: fetch_url(record.get("url"), self._config, self._session), records
        )
        attempts = fetched_bytes = 0
        for record, result in zip(records, results):
            attempts += result.attempts
            if result.reason is not None:
                yield self.route(record, Reject(result.reason, result.detail))
                continue
            fetched_bytes += len(result.body or b"")
            yield self.route(
                record, {**record, "image_bytes": result.body, "http_content_type": result.content_type}
            )
        self._attempts.inc(attempts)  # once per batch
        self._bytes.inc(fetched_bytes)

    def teardown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class FetchImages(beam.PTransform):
    """``kept, rejects = records | FetchImages(config)``: downloads each record's ``url``."""

    def __init__(self, config: FetchConfig | None = None, stage: str = STAGE) -> None:
        super().__init__()
        self._config = config or FetchConfig()
        self.stage = stage  # its name in the funnel (job.build reads it)

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        size = self._config.effective_batch_size
        batches = (
            records
            | "SpreadFetches" >> beam.Reshuffle()
            | "Batch" >> beam.BatchElements(min_batch_size=size, max_batch_size=size)
        )
        return apply_rule_stage(batches, "Fetch", _FetchBatchFn(self._config, self.stage))
