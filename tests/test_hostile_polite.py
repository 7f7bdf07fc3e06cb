"""The polite fetcher against hostile servers: Retry-After of 10^9 seconds, of garbage, of 5,000 digits, a
host that answers 429 forever, and robots.txt files that are huge, dripping, binary, redirect to the cloud
metadata address, loop or fail. Every case ends with a named reason within the stated time bound."""

from __future__ import annotations

import time

import pytest

from pipelines import fetch
from pipelines.fetch import FetchConfig, FetchSession, fetch_url
from tests.hostile_server import HostileServer

_SLACK = 1.5  # a loaded 2-core machine; the bounds under test are seconds apart from it
GUARDED = dict(timeout=5.0, deadline=2.0, allowed_networks=("127.0.0.1/32",))


@pytest.fixture(scope="module", autouse=True)
def _slow_import() -> None:
    fetch.is_disallowed()


@pytest.fixture(scope="module")
def server() -> HostileServer:
    with HostileServer(lifetime=120) as running:
        yield running


@pytest.mark.parametrize("behaviour", ["retry-after-huge", "retry-after-date"])
def test_a_retry_after_past_the_total_deadline_fails_at_once_instead_of_sleeping(
    server: HostileServer, behaviour: str
) -> None:
    config = FetchConfig(**GUARDED, retries=5, total_deadline=30.0)
    started = time.monotonic()
    result = fetch_url(server.url(f"/b/{behaviour}/a"), config, FetchSession(config))
    assert result.reason == fetch.HTTP_ERROR and "HTTP 429" in result.detail
    assert "would pass the total deadline" in result.detail and result.attempts == 1
    assert time.monotonic() - started < _SLACK


@pytest.mark.parametrize("behaviour", ["retry-after-garbage", "retry-after-long"])
def test_a_retry_after_that_is_not_a_delay_is_ignored_for_the_backoff(
    server: HostileServer, behaviour: str
) -> None:
    config = FetchConfig(**GUARDED, retries=2, backoff_base=0.1, total_deadline=10.0)
    started = time.monotonic()
    result = fetch_url(server.url(f"/b/{behaviour}/a"), config, FetchSession(config))
    assert result.reason == fetch.HTTP_ERROR and result.attempts == 3
    assert "Retry-After" not in result.detail.split(";")[0]  # no wait was read from it
    assert time.monotonic() - started < 0.1 + 0.2 + _SLACK
    assert server.hits(f"/b/{behaviour}/a") == 3


def test_a_host_that_answers_429_forever_costs_each_url_at_most_its_total_deadline(
    server: HostileServer,
) -> None:
    config = FetchConfig(**GUARDED, retries=10, backoff_base=0.2, backoff_cap=1.0, total_deadline=3.0)
    session = FetchSession(config)
    started = time.monotonic()
    result = fetch_url(server.url("/b/too-many-requests/forever"), config, session)
    elapsed = time.monotonic() - started
    assert result.reason == fetch.HTTP_ERROR and "HTTP 429" in result.detail
    assert 2 <= result.attempts <= 8  # backed off: 0.1-0.2, 0.2-0.4, 0.4-0.8, 0.5-1.0 … within 3 s
    assert elapsed < config.total_deadline + _SLACK
    assert server.hits("/b/too-many-requests/forever") == result.attempts


@pytest.mark.parametrize(
    ("robots", "image_reason", "blocked_reason", "bound"),
    [
        ("disallow-b", None, fetch.ROBOTS_TXT_DISALLOWED, 1.0),
        ("for-our-token", fetch.ROBOTS_TXT_DISALLOWED, None, 1.0),
        ("huge", None, fetch.ROBOTS_TXT_DISALLOWED, 2.0),  # 10 MB: the first 512 KiB are read, rules on top
        ("binary", None, None, 1.0),  # no rules in it: everything allowed
        ("not-found", None, None, 1.0),  # RFC 9309: 4xx means no rules
        ("drip", fetch.ROBOTS_TXT_UNREACHABLE, fetch.ROBOTS_TXT_UNREACHABLE, 1.0),  # cut at its deadline
        ("redirect-metadata", fetch.ROBOTS_TXT_UNREACHABLE, fetch.ROBOTS_TXT_UNREACHABLE, 1.0),
        ("redirect-loop", fetch.ROBOTS_TXT_UNREACHABLE, fetch.ROBOTS_TXT_UNREACHABLE, 1.0),
        ("server-error", fetch.ROBOTS_TXT_UNREACHABLE, fetch.ROBOTS_TXT_UNREACHABLE, 1.0),
        ("reset", fetch.ROBOTS_TXT_UNREACHABLE, fetch.ROBOTS_TXT_UNREACHABLE, 1.0),
    ],
)
def test_hostile_robots_txt_files_give_a_named_verdict_in_bounded_time(
    robots: str, image_reason: str | None, blocked_reason: str | None, bound: float
) -> None:
    with HostileServer(lifetime=60, robots=robots) as host:
        config = FetchConfig(**GUARDED, retries=0, robots_txt=True, robots_txt_deadline=1.0)
        session = FetchSession(config)
        started = time.monotonic()
        image = fetch_url(host.url("/img/ok.jpg"), config, session)
        assert image.reason == image_reason, image.detail
        assert time.monotonic() - started < bound + _SLACK
        blocked = fetch_url(host.url("/b/empty/x"), config, session)
        if blocked_reason is not None:
            assert blocked.reason == blocked_reason
        else:  # /b/empty is an empty 200: whatever it becomes later, robots.txt let it through
            assert blocked.reason not in (fetch.ROBOTS_TXT_DISALLOWED, fetch.ROBOTS_TXT_UNREACHABLE)
        assert session.robots.reads == 1  # read once, then cached
        if robots == "redirect-metadata":
            assert "169.254.169.254" in image.detail
        if image_reason is not None:
            assert host.hits("/img/ok.jpg") == 0  # refused before the image was asked for
