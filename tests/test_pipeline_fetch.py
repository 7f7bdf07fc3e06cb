"""Fetch stage: real HTTP on 127.0.0.1 against the demo server, and the real Beam runner."""

from __future__ import annotations

import os
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipelines import fetch
from pipelines.fetch import FetchConfig, FetchImages, fetch_url
from testing.web_server import DemoServer

LOCAL = FetchConfig(timeout=2.0, retries=0, allow_private_addresses=True)
# Guard on, but the test server's own address let through: metadata and other loopback stay refused.
GUARDED_LOCAL = FetchConfig(timeout=2.0, retries=0, allowed_networks=("127.0.0.1/32",))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> DemoServer:
    fetch.is_disallowed()  # img2dataset's slow first import, done once as FetchImages' setup() does
    images = tmp_path_factory.mktemp("images")
    (images / "red.jpg").write_bytes(DemoServer().sample)
    (images / "page.jpg").write_bytes(b"<html>not an image</html>")
    with DemoServer(images, slow_seconds=3.0, huge_bytes=100 * 1024 * 1024 + 1) as running:
        yield running


def test_good_image_comes_back_with_its_bytes_and_content_type(server: DemoServer) -> None:
    result = fetch_url(server.url("/images/red.jpg"), LOCAL)
    assert result.reason is None
    assert result.body == server.sample
    assert result.content_type == "image/jpeg"
    assert result.attempts == 1


def test_html_served_as_image_is_a_fetch_success_with_its_content_type(server: DemoServer) -> None:
    result = fetch_url(server.url("/html"), LOCAL)
    assert result.reason is None
    assert result.content_type == "text/html"
    assert result.body.startswith(b"<!doctype html>")


@pytest.mark.parametrize(
    ("path", "reason", "detail"),
    [
        ("/404", fetch.HTTP_ERROR, "HTTP 404"),
        ("/images/missing.jpg", fetch.HTTP_ERROR, "HTTP 404"),
        ("/dead", fetch.HTTP_ERROR, "HTTP 503"),
        ("/redirect-loop", fetch.TOO_MANY_REDIRECTS, "more than 10 redirects"),
        ("/robots", fetch.ROBOTS_DISALLOWED, "noai"),
        ("/reset", fetch.FETCH_FAILED, ""),
        ("/redirect?to=ftp://example.com/a.jpg", fetch.URL_UNSUPPORTED_SCHEME, "ftp://"),
        ("/redirect?to=file:///etc/passwd", fetch.URL_UNSUPPORTED_SCHEME, "file://"),
    ],
)
def test_bad_endpoints_give_their_reason(server: DemoServer, path: str, reason: str, detail: str) -> None:
    result = fetch_url(server.url(path), LOCAL)
    assert (result.reason, result.body) == (reason, None)
    assert detail in result.detail


def test_robots_directive_for_another_agent_does_not_apply(server: DemoServer) -> None:
    assert fetch_url(server.url("/robots-other-agent"), LOCAL).reason is None
    own_token = FetchConfig(timeout=2.0, retries=0, allow_private_addresses=True, user_agent_token="OtherBot")
    assert fetch_url(server.url("/robots-other-agent"), own_token).reason == fetch.ROBOTS_DISALLOWED


@pytest.mark.parametrize("path", ["/huge", "/huge-stream"])
def test_100mb_response_is_refused_without_reading_it_all(server: DemoServer, path: str) -> None:
    config = FetchConfig(timeout=2.0, retries=0, allow_private_addresses=True, max_bytes=1024 * 1024)
    started = time.monotonic()
    result = fetch_url(server.url(path), config)
    assert result.reason == fetch.RESPONSE_TOO_LARGE
    # Reading 100 MB over loopback takes seconds; stopping at the 1 MB bound takes milliseconds.
    assert time.monotonic() - started < 2.0


def test_slow_server_times_out(server: DemoServer) -> None:
    config = FetchConfig(timeout=0.5, retries=0, allow_private_addresses=True)
    assert fetch_url(server.url("/slow"), config).reason == fetch.FETCH_TIMEOUT


def test_trickling_server_is_cut_at_the_deadline(server: DemoServer) -> None:
    config = FetchConfig(timeout=1.0, deadline=0.6, retries=0, allow_private_addresses=True)
    result = fetch_url(server.url("/trickle"), config)
    assert result.reason == fetch.FETCH_TIMEOUT
    assert "deadline" in result.detail


def test_loopback_is_refused_unless_allowed(server: DemoServer) -> None:
    refused = fetch_url(server.url("/sample.jpg"), FetchConfig(timeout=2.0, retries=2))
    assert refused.reason == fetch.URL_PRIVATE_ADDRESS
    assert "loopback" in refused.detail
    assert refused.attempts == 1  # a refusal is never retried
    assert fetch_url(server.url("/sample.jpg"), GUARDED_LOCAL).reason is None


def test_every_redirect_hop_is_checked_by_the_guard(server: DemoServer) -> None:
    before = server.hits("/redirect-to-metadata")
    to_metadata = fetch_url(server.url("/redirect-to-metadata"), GUARDED_LOCAL)
    assert to_metadata.reason == fetch.URL_PRIVATE_ADDRESS
    assert "169.254.169.254" in to_metadata.detail and "link_local" in to_metadata.detail
    assert server.hits("/redirect-to-metadata") == before + 1  # the first hop was fetched, the second refused
    other_loopback = server.url(
        "/redirect?to=" + server.base_url.replace("127.0.0.1", "127.0.0.2") + "/sample.jpg"
    )
    assert fetch_url(other_loopback, GUARDED_LOCAL).reason == fetch.URL_PRIVATE_ADDRESS
    assert fetch_url(server.url("/redirect-chain/3"), GUARDED_LOCAL).body == server.sample


def test_redirect_hops_are_bounded(server: DemoServer) -> None:
    config = FetchConfig(timeout=2.0, retries=0, allow_private_addresses=True, max_redirects=2)
    assert fetch_url(server.url("/redirect-chain/2"), config).reason is None
    assert fetch_url(server.url("/redirect-chain/3"), config).reason == fetch.TOO_MANY_REDIRECTS


def test_flaky_endpoint_succeeds_on_its_one_retry(server: DemoServer) -> None:
    config = FetchConfig(timeout=2.0, retries=1, allow_private_addresses=True)
    result = fetch_url(server.url("/flaky/once"), config)
    assert (result.reason, result.attempts, server.hits("/flaky/once")) == (None, 2, 2)


@pytest.mark.parametrize("retries", [0, 2])
def test_dead_endpoint_is_tried_exactly_retries_plus_one_times(server: DemoServer, retries: int) -> None:
    config = FetchConfig(timeout=2.0, retries=retries, allow_private_addresses=True)
    before = server.hits("/dead")
    result = fetch_url(server.url("/dead"), config)
    assert (result.reason, result.attempts) == (fetch.HTTP_ERROR, retries + 1)
    assert server.hits("/dead") - before == retries + 1


def test_permanent_errors_are_not_retried(server: DemoServer) -> None:
    before = server.hits("/404")
    result = fetch_url(server.url("/404"), FetchConfig(timeout=2.0, retries=3, allow_private_addresses=True))
    assert (result.reason, result.attempts, server.hits("/404") - before) == (fetch.HTTP_ERROR, 1, 1)


def test_refused_connection_and_unknown_host_fail_cleanly() -> None:
    assert fetch_url("http://127.0.0.1:9/x.jpg", LOCAL).reason == fetch.FETCH_FAILED
    assert fetch_url("http://no-such-host.invalid/x.jpg", LOCAL).reason == fetch.FETCH_FAILED


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, fetch.URL_MISSING),
        ("", fetch.URL_MISSING),
        (float("nan"), fetch.URL_MISSING),
        ("ftp://example.com/a.jpg", fetch.URL_UNSUPPORTED_SCHEME),
        ("data:image/png;base64,AAAA", fetch.URL_UNSUPPORTED_SCHEME),
        ("example.com/a.jpg", fetch.URL_UNSUPPORTED_SCHEME),
        ("http:///a.jpg", fetch.URL_INVALID),
        ("http://example.com:99999/a.jpg", fetch.URL_INVALID),
        ("file:///etc/hostname", fetch.FILE_URL_NOT_ALLOWED),
        ("http://169.254.169.254/latest/meta-data/", fetch.URL_PRIVATE_ADDRESS),
        ("http://[::1]/", fetch.URL_PRIVATE_ADDRESS),
        ("http://localhost/", fetch.URL_PRIVATE_ADDRESS),
        ("http://2130706433/", fetch.URL_PRIVATE_ADDRESS),  # 127.0.0.1 as one decimal number
    ],
)
def test_bad_urls_give_their_reason_without_touching_the_network(url: object, reason: str) -> None:
    assert fetch_url(url, FetchConfig(timeout=1.0, retries=0)).reason == reason


def test_file_urls_only_when_allowed_and_only_regular_files_under_the_root(tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    image = root / "a.jpg"
    image.write_bytes(b"\xff\xd8jpeg bytes")
    allowed = FetchConfig(allow_file_urls=True, file_url_root=str(root), max_bytes=100)
    result = fetch_url(image.as_uri(), allowed)
    assert (result.reason, result.body, result.content_type) == (None, b"\xff\xd8jpeg bytes", "image/jpeg")
    assert fetch_url((root / "nope.jpg").as_uri(), allowed).reason == fetch.FETCH_FAILED
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8secret")
    assert fetch_url((tmp_path / "secret.jpg").as_uri(), allowed).reason == fetch.FILE_URL_OUTSIDE_ROOT
    (root / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    assert fetch_url((root / "link.jpg").as_uri(), allowed).reason == fetch.FILE_URL_OUTSIDE_ROOT
    os.mkfifo(root / "pipe.jpg")  # opening a FIFO for reading blocks until a writer comes: never here
    assert fetch_url((root / "pipe.jpg").as_uri(), allowed).reason == fetch.FILE_NOT_REGULAR
    assert fetch_url(root.as_uri(), allowed).reason == fetch.FILE_NOT_REGULAR
    image.write_bytes(b"x" * 101)
    assert fetch_url(image.as_uri(), allowed).reason == fetch.RESPONSE_TOO_LARGE
    with pytest.raises(ValueError, match="file_url_root"):
        FetchConfig(allow_file_urls=True)


def test_config_rejects_unbounded_retries_and_bad_networks() -> None:
    with pytest.raises(ValueError, match="retries"):
        FetchConfig(retries=100)
    with pytest.raises(ValueError, match="allowed_networks"):
        FetchConfig(allowed_networks=("not-a-network",))


def test_fetch_images_on_the_beam_runner_keeps_good_records_and_rejects_the_rest(server: DemoServer) -> None:
    records = [
        {"key": "good", "url": server.url("/images/red.jpg"), "caption": "a red box", "extra": {}},
        {"key": "html", "url": server.url("/images/page.jpg"), "caption": "a page", "extra": {}},
        {"key": "dead", "url": server.url("/404"), "caption": "gone", "extra": {}},
        {"key": "loop", "url": server.url("/redirect-loop"), "caption": "loop", "extra": {}},
        {"key": "meta", "url": server.url("/redirect-to-metadata"), "caption": "metadata", "extra": {}},
        {"key": "noai", "url": server.url("/robots"), "caption": "opted out", "extra": {}},
        {"key": "none", "url": None, "caption": "no url", "extra": {}},
    ]
    config = FetchConfig(timeout=2.0, retries=0, allowed_networks=("127.0.0.1/32",), threads=4)
    options = PipelineOptions(["--runner=FnApiRunner"])
    with beam.Pipeline(options=options) as pipeline:
        kept, rejects = pipeline | beam.Create(records) | FetchImages(config)
        assert_that(
            kept
            | "KeptSummary" >> beam.Map(lambda r: (r["key"], r["http_content_type"], len(r["image_bytes"]))),
            equal_to([("good", "image/jpeg", len(server.sample)), ("html", "image/jpeg", 25)]),
            label="Kept",
        )
        assert_that(
            rejects | "RejectSummary" >> beam.Map(lambda r: (r["key"], r["stage"], r["reason"])),
            equal_to(
                [
                    ("dead", "fetch", fetch.HTTP_ERROR),
                    ("loop", "fetch", fetch.TOO_MANY_REDIRECTS),
                    ("meta", "fetch", fetch.URL_PRIVATE_ADDRESS),
                    ("noai", "fetch", fetch.ROBOTS_DISALLOWED),
                    ("none", "fetch", fetch.URL_MISSING),
                ]
            ),
            label="Rejects",
        )
    counters = {
        result.key.metric.name: result.committed
        for result in pipeline.result.metrics().query()["counters"]
        if result.key.metric.namespace == "curation"
    }
    assert counters["fetch/kept"] == 2
    assert counters["fetch/http_error"] == 1
    assert counters["fetch/url_private_address"] == 1
