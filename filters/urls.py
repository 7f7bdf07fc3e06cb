"""Image URLs from a crawl → a URL an HTTP client can send, or the reason it cannot be one.

``normalize_url`` is pure and total: whatever the pool holds (None, numbers, 10 kB strings, raw IRIs,
broken IPv6 brackets, credentials) gives a ``Url`` or a ``UrlProblem``, never an exception. What it does,
following what browsers do with the same text (WHATWG URL):

- trims surrounding whitespace and drops tabs/newlines inside; any other control character is invalid;
- the scheme must be http, https or file (``url_unsupported_scheme`` otherwise);
- ``user:password@`` is dropped: credentials found in a scraped pool are not ours to send, and the rest
  of the URL names the same resource (before, the whole ``user:pass@host`` was looked up as a host name);
- a non-ASCII host is IDNA-encoded (UTS #46 mapping, as browsers do); a host that cannot be is invalid;
- spaces, quotes, angle brackets and non-ASCII characters in the path and query are percent-encoded
  as UTF-8 (existing ``%XX`` escapes stay); the fragment is dropped (it is never sent).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import idna

URL_MISSING = "url_missing"
URL_INVALID = "url_invalid"
URL_TOO_LONG = "url_too_long"
URL_UNSUPPORTED_SCHEME = "url_unsupported_scheme"
SCHEMES = ("http", "https", "file")
DEFAULT_MAX_URL_CHARS = 8192  # what common servers accept in a request line; real image URLs are far shorter

_INNER_WHITESPACE = re.compile("[\t\n\r]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# WHATWG's path percent-encode set, and the query one for special schemes, besides controls and non-ASCII.
_PATH_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>`{}#?')
_QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "\"<>#'")


@dataclass(frozen=True)
class Url:
    """A URL ready to request: ``url`` as it will be sent, ``scheme`` lower-case."""

    url: str
    scheme: str


@dataclass(frozen=True)
class UrlProblem:
    """Why a value is not a usable URL: a stable ``reason`` and a short ``detail``."""

    reason: str
    detail: str


def _host(hostname: str) -> str | None:
    """The host as ASCII for the request (IDNA for names, brackets for IPv6), or None if invalid."""
    if ":" in hostname:
        try:
            return f"[{ipaddress.IPv6Address(hostname.split('%', 1)[0])}]"
        except ValueError:
            return None
    if not hostname.isascii():
        try:
            hostname = idna.encode(hostname, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    labels = hostname.lower().rstrip(".").split(".")
    if len(hostname) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    return hostname.lower()


def normalize_url(value: object, max_chars: int = DEFAULT_MAX_URL_CHARS) -> Url | UrlProblem:
    """``value`` as a requestable URL, or why not (see the module docstring)."""
    if not isinstance(value, str) or not value.strip():
        return UrlProblem(URL_MISSING, "no url")
    text = _INNER_WHITESPACE.sub("", value.strip())
    if len(text) > max_chars:
        return UrlProblem(URL_TOO_LONG, f"{len(text)} characters, above {max_chars}")
    if _CONTROL.search(text):
        return UrlProblem(URL_INVALID, "control character in the url")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:  # "Invalid IPv6 URL", a port out of range or not a number
        return UrlProblem(URL_INVALID, f"{error}: {text[:200]}")
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        return UrlProblem(URL_UNSUPPORTED_SCHEME, f"scheme {scheme or '(none)'!r}")
    if scheme == "file":
        return Url(text, scheme)
    if not parts.hostname:
        return UrlProblem(URL_INVALID, f"no host: {text[:200]}")
    host = _host(parts.hostname)
    if host is None:
        return UrlProblem(URL_INVALID, f"bad host {parts.hostname[:200]!r}")
    netloc = host if port is None else f"{host}:{port}"
    try:
        path = quote(parts.path or "/", safe=_PATH_SAFE, encoding="utf-8", errors="strict")
        query = quote(parts.query, safe=_QUERY_SAFE, encoding="utf-8", errors="strict")
    except UnicodeEncodeError:  # a lone surrogate
        return UrlProblem(URL_INVALID, "not valid unicode")
    return Url(urlunsplit((scheme, netloc, path, query, "")), scheme)
