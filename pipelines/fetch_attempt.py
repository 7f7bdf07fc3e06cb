"""One download attempt of one URL (``fetch_once``), and the session of shared parts it runs in.

``FetchSession(config)`` holds what the fetch threads of a worker process share: the guarded opener
(``net_guard.guarded_opener``: the address guard at every connection and redirect hop), its keep-alive
``ConnectionPool``, the per-host ``HostGates`` and, with ``robots_txt``, the ``RobotsCache``.
``fetch_once`` runs one exchange under an ``Attempt`` deadline and classifies whatever went wrong into a
``FetchResult`` with a named reason; it never raises for anything the URL or the server does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http import client as http_client
from typing import Any

from pipelines import fetch_body, fetch_deadline, fetch_pool, net_guard
from pipelines.fetch_config import (
    CONTENT_ENCODING_INVALID,
    CONTENT_ENCODING_UNSUPPORTED,
    FETCH_FAILED,
    FETCH_TIMEOUT,
    HTTP_ERROR,
    RESPONSE_MALFORMED,
    RESPONSE_TOO_LARGE,
    RETRYABLE_STATUS,
    ROBOTS_DISALLOWED,
    TOO_MANY_REDIRECTS,
    URL_INVALID,
    URL_PRIVATE_ADDRESS,
    URL_UNSUPPORTED_SCHEME,
    FetchConfig,
    FetchResult,
)
from pipelines.fetch_hosts import HostGates
from pipelines.fetch_retry import retry_after_seconds
from pipelines.fetch_robots import RobotsCache

_ERROR_BODY_BYTES = 64 * 1024  # an error page this small is read, so its connection can be reused


class FetchSession:
    """The opener, connection pool, host gates and robots cache one worker process's fetches share."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self.pool = fetch_pool.ConnectionPool(
            max_idle_per_host=max(4, min(config.effective_host_concurrency, 64))
        )
        self.opener = net_guard.guarded_opener(
            config.allow_private_addresses,
            config.allowed_networks,
            config.max_redirects,
            wrap_connector=fetch_deadline.deadline_connector,
            tls_context=fetch_deadline.tls_context(),
            connection_pool=self.pool if config.keep_alive else None,
        )
        self.gates = HostGates(config.effective_host_concurrency, config.host_rate)
        self.robots = (
            RobotsCache(
                self.opener,
                config.user_agent_token,
                config.user_agent,
                config.robots_txt_max_bytes,
                config.robots_txt_deadline,
            )
            if config.robots_txt
            else None
        )


@functools.lru_cache(maxsize=8)
def shared_session(config: FetchConfig) -> FetchSession:
    """One session per config and process: every fetch DoFn instance of a worker shares its limits."""
    return FetchSession(config)


def fetch_once(
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
    try:
        response = opener.open(request, timeout=config.timeout)
    except urllib.error.HTTPError as error:
        _finish_error_page(error, deadline)
        raise
    reusable = False
    try:
        if config.disallowed_header_directives and is_disallowed()(
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
        reusable = True
        content_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    finally:
        fetch_pool.release(response, reusable)
        response.close()
    return FetchResult(body=body, content_type=content_type)


def _finish_error_page(error: urllib.error.HTTPError, deadline: float) -> None:
    """Reads a small error page to its end (within the deadline) so its connection can be reused."""
    response = error.fp
    reusable = False
    declared = (error.headers.get("Content-Length") or "").strip()
    if declared.isdigit() and int(declared) <= _ERROR_BODY_BYTES and response is not None:
        try:
            fetch_body.read_body(response, _ERROR_BODY_BYTES, deadline)
            reusable = True
        except Exception:  # a broken error page: its connection is closed, the status is what counts
            reusable = False
    fetch_pool.release(response, reusable)


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
        retryable = err.code >= 500 or err.code in RETRYABLE_STATUS
        wait = retry_after_seconds(err.headers.get("Retry-After"), time.time()) if retryable else None
        detail = f"HTTP {err.code} {err.reason}"[:200] + (
            f", Retry-After {wait:.0f} s" if wait is not None else ""
        )
        return FetchResult(reason=HTTP_ERROR, detail=detail, retryable=retryable, retry_after=wait)
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
def is_disallowed() -> Any:
    # Imported on first use: importing img2dataset runs its package __init__, which loads its whole
    # distributed engine (5-13 s measured here), and albumentations checks online at import unless told
    # not to: the flag is set for the import only, the process environment is left as it was.
    with _environment(NO_ALBUMENTATIONS_UPDATE="1"):
        from img2dataset.downloader import is_disallowed

    return is_disallowed


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables set to ``values`` inside the block (unless the user set them), restored after."""
    added = {name: value for name, value in values.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
