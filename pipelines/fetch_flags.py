"""The fetch stage's flags and --keep_fetched's (``curate --help`` lists them with their defaults, from ``FetchConfig``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.fetch_config import FetchConfig


def add_fetch_flags(add: Callable[..., Any]) -> None:
    """Adds the fetch and politeness flags (``add`` is a parser's ``add_argument``)."""
    add(
        "--fetch_timeout",
        type=float,
        default=FetchConfig.timeout,
        help="seconds without progress (connect, each read) before an attempt is a fetch_timeout",
    )
    add(
        "--fetch_retries",
        type=int,
        default=FetchConfig.retries,
        help="extra attempts after a transient failure (timeouts, connection errors, 408/429/5xx)",
    )
    add(
        "--fetch_threads",
        type=int,
        default=FetchConfig.threads,
        help="concurrent downloads per fetch DoFn instance",
    )
    add(
        "--max_image_bytes",
        type=int,
        default=FetchConfig.max_bytes,
        help="largest download (after gzip) or tar member accepted",
    )
    add(
        "--user_agent_token",
        default=FetchConfig.user_agent_token,
        help="token sites can name in X-Robots-Tag (and robots.txt) to opt out of this crawler",
    )
    add("--allow_private_addresses", action="store_true", help="let URLs reach private/loopback addresses")
    add(
        "--allow_file_urls",
        action="store_true",
        help="accept file:// URLs of regular files under --file_url_root (tests, local pools)",
    )
    add("--allowed_networks", help="comma-separated CIDRs a URL may reach although private (127.0.0.1/32)")
    add(
        "--fetch_deadline",
        type=float,
        default=FetchConfig.deadline,
        help="seconds one download attempt may take, headers included",
    )
    add(
        "--fetch_total_deadline",
        type=float,
        default=FetchConfig.total_deadline,
        help="seconds all attempts of one URL may take together, retries and waits included",
    )
    add("--file_url_root", help="with --allow_file_urls: the folder file:// URLs may read from")
    add(
        "--keep_fetched",
        help="folder where the fetched images are kept as WebDataset shards per input file "
        "(img2dataset's layout: NNNNN.tar, .parquet, _stats.json); a re-run with the same folder "
        "reuses the files kept there instead of fetching them again",
    )
    add(
        "--keep_fetched_shard_size",
        type=int,
        default=10_000,
        help="records per kept shard (img2dataset's default); --shard_max_bytes bounds their bytes",
    )
    add(
        "--no_keep_alive",
        action="store_true",
        help="one connection per request (by default connections are reused per host)",
    )
    add(
        "--fetch_backoff",
        type=float,
        default=FetchConfig.backoff_base,
        help="seconds before the first retry, doubling per retry (jittered by URL hash); "
        "a longer Retry-After wins, and holds back the whole host",
    )
    add(
        "--fetch_backoff_cap",
        type=float,
        default=FetchConfig.backoff_cap,
        help="the longest backoff between two attempts",
    )
    add(
        "--host_concurrency",
        type=int,
        default=FetchConfig.host_concurrency,
        help="downloads from one host at once, per worker process (0 = --fetch_threads)",
    )
    add(
        "--host_rate",
        type=float,
        default=FetchConfig.host_rate,
        help="downloads started per second per host, per worker process (0 = no limit)",
    )
    add(
        "--robots_txt",
        action="store_true",
        help="read each host's robots.txt (once, bounded, through the address guard) and honour it "
        "for --user_agent_token (robots_txt_disallowed / robots_txt_unreachable)",
    )
    add(
        "--opt_out_directives",
        default=",".join(FetchConfig.disallowed_header_directives),
        help="comma-separated X-Robots-Tag directives that opt an image out ('' = ignore the header)",
    )
