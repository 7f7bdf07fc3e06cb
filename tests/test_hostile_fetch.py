"""The fetch deadline bounds the whole attempt — status line, headers, 100 Continue lines, a TLS handshake
that never answers — and retries stay within the stated total (real sockets on 127.0.0.1)."""

from __future__ import annotations

import time

import pytest

from pipelines import fetch
from pipelines.fetch import FetchConfig, fetch_url
from tests.hostile_server import HostileServer

# Slack for a loaded 2-core machine: the bound under test is the deadline itself, seconds apart from it.
_SLACK = 1.5


@pytest.fixture(scope="module")
def server() -> HostileServer:
    fetch.is_disallowed()  # img2dataset's slow first import, done once as FetchImages' setup() does
    with HostileServer(lifetime=120) as running:
        yield running


@pytest.mark.parametrize("behaviour", ["header-drip", "status-drip", "continue-flood", "silent"])
def test_a_server_that_never_finishes_its_headers_is_cut_at_the_deadline(
    server: HostileServer, behaviour: str
) -> None:
    config = FetchConfig(timeout=5.0, deadline=1.0, retries=0, allow_private_addresses=True)
    started = time.monotonic()
    result = fetch_url(server.url(f"/b/{behaviour}/unit"), config)
    elapsed = time.monotonic() - started
    assert result.reason == fetch.FETCH_TIMEOUT and "deadline" in result.detail
    assert elapsed < config.deadline + _SLACK  # the per-read timeout (5 s) never tripped: data kept coming


def test_a_tls_handshake_that_never_answers_is_cut_at_the_deadline(server: HostileServer) -> None:
    config = FetchConfig(timeout=5.0, deadline=1.0, retries=0, allow_private_addresses=True)
    started = time.monotonic()
    result = fetch_url(server.url("/b/silent/tls").replace("http://", "https://"), config)
    assert result.reason == fetch.FETCH_TIMEOUT
    assert time.monotonic() - started < config.deadline + _SLACK


def test_retries_share_one_total_deadline(server: HostileServer) -> None:
    config = FetchConfig(
        timeout=5.0, deadline=1.0, total_deadline=1.5, retries=5, allow_private_addresses=True
    )
    started = time.monotonic()
    result = fetch_url(server.url("/b/header-drip/total"), config)
    assert result.reason == fetch.FETCH_TIMEOUT and result.attempts == 2  # 1 s, then the 0.5 s left
    assert time.monotonic() - started < config.total_deadline + _SLACK
    assert server.hits("/b/header-drip/total") == 2


def test_the_guard_and_the_deadline_hold_together(server: HostileServer) -> None:
    config = FetchConfig(timeout=5.0, deadline=1.0, retries=0, allowed_networks=("0.0.0.0/0",))
    assert fetch_url(server.url("/img/ok.jpg"), config).reason is None
    assert fetch_url("http://169.254.169.254/latest/", config).reason == fetch.URL_PRIVATE_ADDRESS
    exact = FetchConfig(timeout=0.5, deadline=1.0, retries=0, allowed_networks=("169.254.169.254/32",))
    assert fetch_url("http://169.254.169.254:9/latest/", exact).reason != fetch.URL_PRIVATE_ADDRESS
