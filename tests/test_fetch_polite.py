"""The polite fetcher on real HTTP (127.0.0.1): keep-alive, backoff and Retry-After, per-host limits, robots.txt."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import fetch
from pipelines.fetch import FetchConfig, FetchSession, fetch_url
from pipelines.fetch_hosts import HostBusy, HostGates
from pipelines.fetch_retry import backoff_seconds, retry_after_seconds
from testing.web_server import DemoServer

LOCAL = dict(timeout=3.0, retries=0, allowed_networks=("127.0.0.1/32",))


@pytest.fixture(scope="module", autouse=True)
def _slow_import() -> None:
    fetch.is_disallowed()  # img2dataset's first import takes seconds: never inside a timed test


def test_one_connection_serves_many_requests_with_keep_alive() -> None:
    with DemoServer(keep_alive=True) as server:
        session = FetchSession(FetchConfig(**LOCAL))
        results = [fetch_url(server.url("/sample.jpg"), session.config, session) for _ in range(6)]
        assert all(r.body == server.sample for r in results)
        assert (server.connections, session.pool.opened, session.pool.reused) == (1, 1, 5)
        # An error page is read to its end, so even a 404 leaves its connection reusable.
        assert fetch_url(server.url("/404"), session.config, session).reason == fetch.HTTP_ERROR
        assert fetch_url(server.url("/sample.jpg"), session.config, session).reason is None
        assert server.connections == 1
    with DemoServer(keep_alive=True) as server:
        closing = FetchSession(FetchConfig(**LOCAL, keep_alive=False))
        for _ in range(4):
            assert fetch_url(server.url("/sample.jpg"), closing.config, closing).reason is None
        assert server.connections == 4


def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_failure() -> None:
    with DemoServer(keep_alive=False) as server:  # HTTP/1.0: the server closes after every answer
        session = FetchSession(FetchConfig(**LOCAL))
        for _ in range(3):
            assert fetch_url(server.url("/sample.jpg"), session.config, session).attempts == 1
        assert session.pool.idle() == 0 and server.connections == 3


def test_backoff_is_exponential_jittered_and_the_same_in_every_run() -> None:
    url = "http://example.com/a.jpg"
    delays = [backoff_seconds(url, n, 1.0, 30.0) for n in range(1, 8)]
    assert delays == [backoff_seconds(url, n, 1.0, 30.0) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        assert 0.5 * min(30.0, 2 ** (n - 1)) <= delay < min(30.0, 2 ** (n - 1))
    others = {round(backoff_seconds(f"http://example.com/{i}.jpg", 1, 1.0, 30.0), 6) for i in range(50)}
    assert len(others) > 40  # jitter spreads URLs apart
    assert backoff_seconds(url, 1, 0.0, 30.0) == 0.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: no wait
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("9" * 100, None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00", None),  # a date without its zone is not a valid HTTP date
    ],
)
def test_retry_after_values(value: object, seconds: float | None) -> None:
    now = 1445412480.0  # 2015-10-21 07:28:00 UTC
    assert retry_after_seconds(value, now) == seconds


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_retry_after_never_raises_and_is_a_finite_wait_or_none(value: str) -> None:
    seconds = retry_after_seconds(value, 1.7e9)
    assert seconds is None or (seconds >= 0 and seconds < float("inf"))


def test_a_retry_after_answer_is_waited_for_and_then_the_image_comes() -> None:
    with DemoServer() as server:
        config = FetchConfig(**{**LOCAL, "retries": 2}, backoff_base=0.05)
        started = time.monotonic()
        result = fetch_url(server.url("/retry-after/1/a"), config, FetchSession(config))
        assert (result.reason, result.attempts) == (None, 2)
        assert time.monotonic() - started >= 1.0
        garbage = fetch_url(server.url("/retry-after/soon/b"), config, FetchSession(config))
        assert (garbage.reason, garbage.attempts) == (None, 2)  # garbage ignored: the short backoff instead


def test_host_concurrency_bounds_requests_in_flight_at_the_server() -> None:
    with DemoServer(latency_seconds=0.15, keep_alive=True) as server:
        config = FetchConfig(**LOCAL, threads=8, host_concurrency=2)
        session = FetchSession(config)
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(lambda i: fetch_url(server.url(f"/sample.jpg?{i}"), config, session), range(12))
            )
        assert all(r.reason is None for r in results)
        assert server.max_in_flight == 2


def test_host_rate_spaces_the_attempts_to_one_host() -> None:
    with DemoServer(keep_alive=True) as server:
        config = FetchConfig(**LOCAL, threads=8, host_rate=10.0)
        session = FetchSession(config)
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(lambda i: fetch_url(server.url(f"/sample.jpg?{i}"), config, session), range(8))
            )
        assert all(r.reason is None for r in results)
        assert time.monotonic() - started >= 0.7  # 8 starts, 0.1 s apart


def test_a_host_on_hold_refuses_at_once_what_it_cannot_serve_in_time() -> None:
    gates = HostGates(concurrency=1)
    gates.hold("example.com", 30.0)
    started = time.monotonic()
    with pytest.raises(HostBusy, match="Retry-After"), gates.slot("example.com", time.monotonic() + 1.0):
        pass
    assert time.monotonic() - started < 0.5
    with gates.slot("other.example", time.monotonic() + 1.0):
        pass  # other hosts are not held


def test_host_state_is_bounded() -> None:
    gates = HostGates(concurrency=1, max_hosts=100)
    for i in range(1000):
        with gates.slot(f"host{i}.example", time.monotonic() + 1.0):
            pass
    assert gates.tracked() == 100


def test_robots_txt_is_honoured_for_our_token_and_read_once_per_host() -> None:
    rules = "User-agent: img2dataset\nDisallow: /images/\n\nUser-agent: *\nAllow: /\n"
    with DemoServer(robots_txt=rules) as server:
        config = FetchConfig(**LOCAL, robots_txt=True)
        session = FetchSession(config)
        refused = fetch_url(server.url("/images/a.jpg"), config, session)
        assert refused.reason == fetch.ROBOTS_TXT_DISALLOWED and "/images/a.jpg" in refused.detail
        assert fetch_url(server.url("/sample.jpg"), config, session).reason is None
        assert server.hits("/images/a.jpg") == 0  # refused before any request for it
        assert server.hits("/robots.txt") == 1 and session.robots.reads == 1
        other_token = FetchConfig(**LOCAL, robots_txt=True, user_agent_token="SomeBot")
        assert fetch_url(server.url("/images/a.jpg"), other_token, FetchSession(other_token)).reason == (
            fetch.HTTP_ERROR  # allowed for that token; the file is simply not there
        )
        off = FetchConfig(**LOCAL)
        assert fetch_url(server.url("/images/a.jpg"), off, FetchSession(off)).reason == fetch.HTTP_ERROR


def test_opt_out_directives_are_configurable() -> None:
    with DemoServer() as server:
        default = FetchConfig(**LOCAL)
        assert "noml" in default.disallowed_header_directives
        assert fetch_url(server.url("/robots"), default).reason == fetch.ROBOTS_DISALLOWED  # noai
        only_noml = FetchConfig(**LOCAL, disallowed_header_directives=("noml",))
        assert fetch_url(server.url("/robots"), only_noml).reason is None
        ignore = FetchConfig(**LOCAL, disallowed_header_directives=())
        assert fetch_url(server.url("/robots"), ignore).reason is None


def test_a_retry_after_holds_the_whole_host_and_what_cannot_wait_is_host_busy() -> None:
    with DemoServer() as server:
        config = FetchConfig(**{**LOCAL, "retries": 1}, total_deadline=5.0)
        session = FetchSession(config)
        first = fetch_url(server.url("/retry-after/30/a"), config, session)
        assert first.reason == fetch.HTTP_ERROR and "would pass the total deadline" in first.detail
        started = time.monotonic()
        other = fetch_url(server.url("/sample.jpg"), config, session)
        assert (other.reason, other.attempts) == (fetch.HOST_BUSY, 0) and "Retry-After" in other.detail
        assert time.monotonic() - started < 1.0 and server.hits("/sample.jpg") == 0
