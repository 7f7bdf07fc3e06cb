"""Address guard for the fetch stage: refuse to connect to anything but public internet addresses.

A candidate pool is untrusted input. Without a guard, a URL (or a redirect from a public URL) to
``http://169.254.169.254/`` reads a cloud worker's metadata and credentials, and ``http://10.0.0.5/``
probes the worker's private network. So every address the fetcher connects to is checked here:

- ``check_ip(ip)``: pure; ``None`` for a public unicast address, else ``URL_PRIVATE_ADDRESS``.
- ``check_address(host_or_ip)``: resolves a host name with ``getaddrinfo`` and refuses it when ANY
  resolved address is refused (a name that resolves to one public and one private address is not safe).
- ``create_guarded_connection(...)``: a drop-in for ``socket.create_connection`` that resolves once,
  checks every address and connects only to the addresses it checked, so a DNS answer that changes
  between the check and the connect (DNS rebinding) cannot slip through.
- ``guarded_opener(...)``: a urllib opener whose HTTP(S) connections all go through the guard, with
  no proxy handler (the guard must see the address actually connected to), no file/ftp/data handlers,
  and its own redirect handler: at most ``max_redirects`` hops, to http(s) only, redirect bodies never
  read (urllib's handler reads them whole), each hop a new guarded connection.

Refused: loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16 with the cloud metadata
address, fe80::/10), multicast, reserved, unspecified, site-local (fec0::/10), shared/CGNAT
(100.64.0.0/10, Alibaba's metadata address lives there) and every other non-global range; IPv6 forms
that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo)
are judged by the embedded IPv4 address. The cloud metadata addresses (``METADATA_ADDRESSES``) stay
refused even inside an allowed network unless that network is exactly the one address: an
``--allowed_networks 0.0.0.0/0`` meant for a lab must not hand out a worker's credentials.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import string
import urllib.request
from collections.abc import Iterable
from http import client as http_client
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from filters.decision import KEEP, Verdict

URL_PRIVATE_ADDRESS = "url_private_address"
HOST_UNRESOLVABLE = "host_unresolvable"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Instance metadata services: AWS/GCP/Azure/Oracle/DigitalOcean, AWS ECS task metadata, Oracle's
# alternative, Alibaba Cloud, AWS over IPv6.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "192.0.0.192", "100.100.100.200", "fd00:ec2::254")
)


class AddressRefused(Exception):
    """A connection target the guard refuses. Deliberately not an ``OSError``: urllib wraps those
    into ``URLError``, and a refusal must stay recognisable (and is never worth a retry)."""

    def __init__(self, host: str, address: str, category: str) -> None:
        super().__init__(f"{host} resolves to {address} ({category})")
        self.host = host
        self.address = address
        self.category = category


def refused_category(ip: IPAddress) -> str | None:
    """Why ``ip`` is refused ("loopback", "link_local", …), or ``None`` for a public unicast address."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return refused_category(embedded)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link_local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("site_local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("not_global", not ip.is_global),
    )
    for category, refused in checks:
        if refused:
            return category
    return None


def check_ip(ip: IPAddress | str) -> Verdict:
    """``None`` for a public unicast address, ``URL_PRIVATE_ADDRESS`` otherwise."""
    return KEEP if refused_category(_parse_ip(ip)) is None else URL_PRIVATE_ADDRESS


def check_address(host_or_ip: str) -> Verdict:
    """Resolves ``host_or_ip`` and refuses it if any resolved address is refused.

    Returns ``None`` (keep), ``URL_PRIVATE_ADDRESS``, or ``HOST_UNRESOLVABLE`` when the name does
    not resolve at all.
    """
    try:
        resolve_public(host_or_ip, 80)
    except AddressRefused:
        return URL_PRIVATE_ADDRESS
    except (socket.gaierror, UnicodeError):
        return HOST_UNRESOLVABLE
    return KEEP


def resolve_public(host: str, port: int, allowed: Networks = ()) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` results for (host, port) over TCP; raises ``AddressRefused`` if any is refused.

    ``allowed``: networks let through although refused (e.g. 127.0.0.1/32 for a local test server).
    """
    bare = _strip_brackets(host)
    infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    for info in infos:
        ip = _parse_ip(info[4][0])
        category = refused_category(ip)
        if category is not None and not _allowed(ip, allowed):
            raise AddressRefused(bare, str(ip), category)
    return infos


def _allowed(ip: IPAddress, allowed: Networks) -> bool:
    """Whether ``allowed`` lets ``ip`` through: a metadata address only when named exactly."""
    target = _embedded_ipv4(ip) or ip
    if target in METADATA_ADDRESSES:
        return any(n.num_addresses == 1 and n.network_address in (ip, target) for n in allowed)
    return any(ip in network for network in allowed)


def parse_networks(specs: Iterable[str]) -> Networks:
    """``("127.0.0.1/32", "::1")`` → networks for ``allowed``; raises ``ValueError`` on a bad spec."""
    return tuple(ipaddress.ip_network(spec.strip(), strict=False) for spec in specs if spec.strip())


def create_guarded_connection(
    address: tuple[str, int],
    timeout: float | object = socket._GLOBAL_DEFAULT_TIMEOUT,  # the stdlib's own "no timeout given"
    source_address: tuple[str, int] | None = None,
    allowed: Networks = (),
) -> socket.socket:
    """``socket.create_connection`` that connects only to addresses ``resolve_public`` accepted."""
    host, port = address
    last_error: OSError | None = None
    for family, socktype, proto, _, sockaddr in resolve_public(host, port, allowed):
        sock = socket.socket(family, socktype, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)  # type: ignore[arg-type]
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as err:
            last_error = err
            sock.close()
    if last_error is not None:
        raise last_error
    raise OSError(f"getaddrinfo returned no address for {host}")


class TooManyRedirects(Exception):
    """More redirect hops than allowed (a redirect loop ends here)."""


class RedirectSchemeRefused(Exception):
    """A redirect to something other than http(s) (file://, ftp://, …)."""


class RedirectInvalid(Exception):
    """A redirect whose Location is not a URL (``http://[::1``, a bad port)."""


def guarded_opener(
    allow_private_addresses: bool = False,
    allowed_networks: Iterable[str] = (),
    max_redirects: int = 10,
    wrap_connector: Any = None,
    tls_context: Any = None,
    connection_pool: Any = None,
) -> urllib.request.OpenerDirector:
    """An opener for http(s) only; connections guarded unless ``allow_private_addresses``.

    ``wrap_connector(connect)``, when given, wraps the function every connection is made with
    (the fetcher's deadline uses it to watch each socket); ``tls_context`` is the HTTPS client context
    (None: Python's default, certificates verified); ``connection_pool`` (``fetch_pool.ConnectionPool``)
    keeps connections alive per host: new ones are still made by the guarded connector."""
    connector: Any = socket.create_connection
    if not allow_private_addresses:
        connector = functools.partial(create_guarded_connection, allowed=parse_networks(allowed_networks))
    if wrap_connector is not None:
        connector = wrap_connector(connector)
    opener = urllib.request.OpenerDirector()
    for handler in (
        _HTTPHandler(connector, connection_pool),
        _HTTPSHandler(connector, tls_context, connection_pool),
        _BoundedRedirects(max_redirects),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),  # any other scheme: URLError("unknown url type"), not None
    ):
        opener.add_handler(handler)
    return opener


def _connection_factory(connection_class: type, connector: Any) -> Any:
    """``connection_class`` whose sockets come from ``connector`` (the guard) instead of the stdlib's."""

    def make(host: str, **kwargs: Any) -> http_client.HTTPConnection:
        connection = connection_class(host, **kwargs)
        if connector is not None:
            connection._create_connection = connector
        return connection

    return make


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, connector: Any, pool: Any = None) -> None:
        super().__init__()
        self._make_connection = _connection_factory(http_client.HTTPConnection, connector)
        self._pool = pool

    def http_open(self, req: urllib.request.Request) -> Any:
        if self._pool is not None:
            return self._pool.open(self, self._make_connection, req)
        return self.do_open(self._make_connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, connector: Any, context: Any = None, pool: Any = None) -> None:
        super().__init__(context=context)
        self._make_connection = _connection_factory(http_client.HTTPSConnection, connector)
        self._pool = pool

    def https_open(self, req: urllib.request.Request) -> Any:
        if self._pool is not None:
            return self._pool.open(self, self._make_connection, req, context=self._context)
        return self.do_open(self._make_connection, req, context=self._context)


class _BoundedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, max_redirects: int) -> None:
        super().__init__()
        self._max_redirects = max_redirects

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        location = headers.get("location") or headers.get("uri")
        if not location:
            return None  # urllib's default handler then reports the 3xx as an HTTP error
        fp.close()
        if (
            getattr(fp, "pool_connection", None) is not None
        ):  # a kept-alive connection: body unread, so closed
            fp.pool_connection[2].close()
            fp.pool_connection = None
        try:
            target = urljoin(req.full_url, quote(location, encoding="iso-8859-1", safe=string.punctuation))
            parts = urlsplit(target)
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError as error:
            raise RedirectInvalid(f"redirect to {location[:200]!r}: {error}") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise RedirectSchemeRefused(f"redirect to {target[:200]}")
        if not parts.hostname:
            raise RedirectInvalid(f"redirect to {target[:200]!r}: no host")
        hops = getattr(req, "redirect_hops", 0) + 1
        if hops > self._max_redirects:
            raise TooManyRedirects(f"more than {self._max_redirects} redirects, last to {target[:200]}")
        new = self.redirect_request(req, fp, code, msg, headers, target)
        if new is None:
            return None
        new.redirect_hops = hops
        return self.parent.open(new, timeout=req.timeout)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # (server, client): the client is where the packets end up
    return None


def _parse_ip(value: IPAddress | str) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    # getaddrinfo reports link-local IPv6 with a zone ("fe80::1%eth0"); the zone is not part of the address.
    return ipaddress.ip_address(_strip_brackets(value).split("%", 1)[0])


def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host
