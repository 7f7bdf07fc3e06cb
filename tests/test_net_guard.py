"""The address guard: literal IPs, host names that resolve to them, and guarded connections."""

from __future__ import annotations

import ipaddress
import socket
import urllib.error

import pytest

from pipelines import net_guard
from pipelines.net_guard import (
    HOST_UNRESOLVABLE,
    URL_PRIVATE_ADDRESS,
    AddressRefused,
    check_address,
    check_ip,
    create_guarded_connection,
    parse_networks,
    refused_category,
)


@pytest.mark.parametrize(
    ("ip", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link_local"),  # AWS/GCP/Azure instance metadata
        ("100.100.100.200", "not_global"),  # Alibaba Cloud metadata, in the shared CGNAT range
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "private"),  # reserved for future use; the stdlib files it under private too
        ("255.255.255.255", "private"),
        ("192.0.2.7", "private"),  # documentation range
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link_local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("fec0::1", "site_local"),
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link_local"),
        ("64:ff9b::a9fe:a9fe", "link_local"),  # NAT64 form of 169.254.169.254
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused_with_their_category(ip: str, category: str) -> None:
    assert refused_category(ipaddress.ip_address(ip)) == category
    assert check_ip(ip) == URL_PRIVATE_ADDRESS


@pytest.mark.parametrize(
    "ip",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_unicast_addresses_pass(ip: str) -> None:
    assert refused_category(ipaddress.ip_address(ip)) is None
    assert check_ip(ip) is None


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "[::1]", "::1", "2130706433", "0x7f.1", "169.254.169.254"]
)
def test_host_names_and_odd_spellings_are_resolved_then_refused(host: str) -> None:
    assert check_address(host) == URL_PRIVATE_ADDRESS


def test_literal_public_address_passes_without_dns() -> None:
    assert check_address("8.8.8.8") is None


def test_unresolvable_host_is_reported_as_such() -> None:
    assert check_address("no-such-host.invalid") == HOST_UNRESOLVABLE


def test_a_name_is_refused_when_any_of_its_addresses_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        "public.test": ["8.8.8.8", "1.1.1.1"],
        "mixed.test": ["8.8.8.8", "10.0.0.5"],  # one public and one private answer: not safe
        "rebind.test": ["2606:4700:4700::1111", "::ffff:169.254.169.254"],
    }

    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answers[host]
        ]

    monkeypatch.setattr(net_guard.socket, "getaddrinfo", fake_getaddrinfo)
    assert check_address("public.test") is None
    assert check_address("mixed.test") == URL_PRIVATE_ADDRESS
    assert check_address("rebind.test") == URL_PRIVATE_ADDRESS
    with pytest.raises(AddressRefused) as refused:
        net_guard.resolve_public("mixed.test", 80)
    assert (refused.value.address, refused.value.category) == ("10.0.0.5", "private")


def test_allowed_networks_let_through_only_what_they_name() -> None:
    allowed = parse_networks(["127.0.0.1/32", " "])
    assert len(allowed) == 1
    assert net_guard.resolve_public("127.0.0.1", 80, allowed)
    with pytest.raises(AddressRefused):
        net_guard.resolve_public("127.0.0.2", 80, allowed)
    with pytest.raises(AddressRefused):
        net_guard.resolve_public("169.254.169.254", 80, allowed)
    with pytest.raises(ValueError):
        parse_networks(["not-a-network"])


def test_guarded_connection_connects_only_to_checked_addresses() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(AddressRefused):
            create_guarded_connection(("127.0.0.1", port), timeout=2)
        allowed = parse_networks(["127.0.0.0/8"])
        with create_guarded_connection(("127.0.0.1", port), timeout=2, allowed=allowed) as sock:
            assert sock.getpeername() == ("127.0.0.1", port)


def test_guarded_opener_speaks_only_http() -> None:
    opener = net_guard.guarded_opener()
    for url in ("file:///etc/hostname", "ftp://example.com/a.jpg", "data:text/plain,hi"):
        with pytest.raises(urllib.error.URLError, match="unknown url type"):
            opener.open(url, timeout=1)
