"""Per-domain fetch summary: combines on the real Beam runner, top N by URLs with the rest summed."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipelines.domain_stats import SummariseDomains, host_of, summary


def test_host_of_names_what_has_no_host() -> None:
    assert host_of("https://IMG.Example.com:8443/a.jpg") == "img.example.com"
    assert host_of("file:///data/a.jpg") == "(file)"
    assert host_of("http://[::1/x") == "(invalid url)"
    assert host_of("") == host_of(None) == "(no url)"


def test_summary_lists_the_busiest_hosts_and_sums_the_rest() -> None:
    kept = [{"url": f"http://a.example/{i}.jpg"} for i in range(5)] + [{"url": "http://b.example/x.jpg"}]
    rejects = (
        [{"url": f"http://a.example/bad{i}.jpg", "reason": "http_error"} for i in range(2)]
        + [{"url": f"http://c.example/{i}.jpg", "reason": "fetch_timeout"} for i in range(4)]
        + [{"url": f"http://d{i}.example/x.jpg", "reason": "url_private_address"} for i in range(3)]
    )
    expected = {
        "domains": 6,
        "listed": 2,
        "top": [
            {"domain": "a.example", "urls": 7, "ok": 5, "failed": 2, "reasons": {"http_error": 2}},
            {"domain": "c.example", "urls": 4, "ok": 0, "failed": 4, "reasons": {"fetch_timeout": 4}},
        ],
        "others": {"domains": 4, "urls": 4, "ok": 1, "failed": 3, "reasons": {"url_private_address": 3}},
    }
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        result = (
            pipeline | "Kept" >> beam.Create(kept),
            pipeline | "Rejects" >> beam.Create(rejects),
        ) | SummariseDomains(top=2)
        assert_that(result, equal_to([expected]))


def test_summary_of_nothing_fetched() -> None:
    assert summary([], {}, 0) == {
        "domains": 0, "listed": 0, "top": [],
        "others": {"domains": 0, "urls": 0, "ok": 0, "failed": 0, "reasons": {}},
    }  # fmt: skip
