"""The fetch stage's settings (``FetchConfig``), one URL's outcome (``FetchResult``) and its reasons.

The reasons and what each one means are listed in ``pipelines.fetch``'s docstring.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from filters import urls
from pipelines import net_guard

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
ROBOTS_TXT_DISALLOWED = "robots_txt_disallowed"
ROBOTS_TXT_UNREACHABLE = "robots_txt_unreachable"
HOST_BUSY = "host_busy"

# img2dataset's browser-like user agent; the token in "(compatible; TOKEN; …)" is what sites name in
# "X-Robots-Tag: TOKEN: noai" to opt out of this crawler specifically.
BROWSER_USER_AGENT = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:72.0) Gecko/20100101 Firefox/72.0"
RETRYABLE_STATUS = frozenset({408, 429})
MAX_RETRIES = 10
# img2dataset's X-Robots-Tag directives, plus ``none`` (noindex + nofollow) and ``noml``.
DEFAULT_OPT_OUT_DIRECTIVES = ("noai", "noimageai", "noml", "noindex", "noimageindex", "none")


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

    Politeness (``pipelines.fetch_hosts``, ``fetch_pool``, ``fetch_retry``, ``fetch_robots``), all per
    worker process: ``keep_alive`` reuses connections per host; a retry waits ``backoff_base × 2^(n-1)``
    seconds (at most ``backoff_cap``, jittered by a hash of the URL and attempt), or longer when the
    server's ``Retry-After`` says so (``retry_after``), which also holds back every other URL of that host; a wait that
    would end past ``total_deadline`` is not waited (the URL fails at once). ``host_concurrency``:
    attempts running at once per host (0 = ``threads``); ``host_rate``: attempts started per second per
    host (0 = no limit). ``robots_txt``: read each host's robots.txt once (at most ``robots_txt_max_bytes``,
    within ``robots_txt_deadline`` seconds, through the same address guard) and honour it for
    ``user_agent_token``. ``disallowed_header_directives``: the ``X-Robots-Tag`` directives that opt an
    image out (``noai``, ``noimageai``, ``noml`` …; empty: ignore the header).
    """

    timeout: float = 10.0
    deadline: float = 60.0
    total_deadline: float = 90.0
    retries: int = 2
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 10
    max_url_chars: int = urls.DEFAULT_MAX_URL_CHARS
    user_agent_token: str = "img2dataset"
    disallowed_header_directives: tuple[str, ...] = DEFAULT_OPT_OUT_DIRECTIVES
    allow_private_addresses: bool = False
    allowed_networks: tuple[str, ...] = ()
    allow_file_urls: bool = False
    file_url_root: str = ""
    threads: int = 16
    batch_size: int = 0
    keep_alive: bool = True
    retry_after: bool = True
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    host_concurrency: int = 0
    host_rate: float = 0.0
    robots_txt: bool = False
    robots_txt_max_bytes: int = 512 * 1024
    robots_txt_deadline: float = 10.0

    def __post_init__(self) -> None:
        if min(self.timeout, self.deadline, self.total_deadline) <= 0:
            raise ValueError("FetchConfig: timeout, deadline and total_deadline must be positive seconds")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise ValueError(f"FetchConfig: retries must be between 0 and {MAX_RETRIES}")
        if self.max_bytes <= 0 or self.max_redirects < 0 or self.threads <= 0 or self.batch_size < 0:
            raise ValueError(
                "FetchConfig: need max_bytes > 0, max_redirects >= 0, threads > 0, batch_size >= 0"
            )
        numbers = (self.backoff_base, self.backoff_cap, self.host_rate, self.host_concurrency)
        if not all(math.isfinite(n) and n >= 0 for n in numbers):
            raise ValueError("FetchConfig: backoff, host_rate and host_concurrency must be numbers >= 0")
        if self.robots_txt_max_bytes < 1024 or self.robots_txt_deadline <= 0:
            raise ValueError("FetchConfig: robots_txt_max_bytes must be >= 1024, robots_txt_deadline > 0")
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
            return BROWSER_USER_AGENT
        return f"{BROWSER_USER_AGENT} (compatible; {self.user_agent_token}; +https://github.com/rom1504/img2dataset)"

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size or 4 * self.threads

    @property
    def effective_host_concurrency(self) -> int:
        return self.host_concurrency or self.threads


@dataclass(frozen=True)
class FetchResult:
    """What one URL gave: the body and its content type, or a reason (with detail) and no body."""

    body: bytes | None = None
    content_type: str = ""
    reason: str | None = None
    detail: str = ""
    attempts: int = 1
    retryable: bool = False
    retry_after: float | None = None  # seconds a 429/503 asked to wait (Retry-After), when it did
