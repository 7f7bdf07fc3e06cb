"""report.html from a small hand-made dataset directory."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
import webdataset as wds
from PIL import Image

from pipelines.report import REPORT_FILE, ReportError, main, write_report

STATS = {
    "read": 10,
    "kept": 4,
    "dropped": 6,
    "conserved": True,
    "stages": [
        {"stage": "read", "in": 10, "dropped": 1, "out": 9, "reasons": {"url_missing": 1}},
        {"stage": "text", "in": 9, "dropped": 2, "out": 7, "reasons": {"text_too_short": 2}},
        {"stage": "fetch", "in": 7, "dropped": 2, "out": 5, "reasons": {"http_error": 1, "fetch_timeout": 1}},
        {"stage": "image", "in": 5, "dropped": 1, "out": 4, "reasons": {"image_too_small": 1}},
    ],
    "dropped_by_reason": {},
}
QUERY_COUNTS = {
    "balance": "exact",
    "per_query_cap": 2,
    "queries": [
        {"query": "ball", "matched": 5, "before_balance": 4, "kept": 2, "credited": 2},
        {"query": "red", "matched": 3, "before_balance": 3, "kept": 2, "credited": 1},
        {"query": "umbrella", "matched": 1, "before_balance": 1, "kept": 1, "credited": 1},
    ],
}
VOCABULARY = {
    "v_tau": 2,
    "synsets": [
        {"id": "n02778669", "name": "ball.n.01", "count": 3, "lemmas": ["ball"], "kept": True},
        {"id": "n04507155", "name": "umbrella.n.01", "count": 1, "lemmas": ["umbrella"], "kept": False},
    ],
}
SHAPES = [(300, 240), (640, 480), (256, 256), (1200, 300)]


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    for name, payload in (
        ("stats.json", STATS),
        ("query_counts.json", QUERY_COUNTS),
        ("vocabulary.json", VOCABULARY),
    ):
        (tmp_path / name).write_text(json.dumps(payload), encoding="utf-8")
    with wds.TarWriter(str(tmp_path / "00000.tar")) as writer:
        for index, (width, height) in enumerate(SHAPES):
            key = f"sample{index:03d}"
            meta = {
                "key": key,
                "width": 256,
                "height": 256,
                "original_width": width,
                "original_height": height,
                "credited_query": "ball",
                "synsets": ["n02778669"],
            }
            writer.write(
                {"__key__": key, "jpg": _jpeg(), "txt": "a red ball", "json": json.dumps(meta).encode()}
            )
    return tmp_path


def _embedded_pngs(page: str) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(data)))
        for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    ]


def test_report_has_every_section_with_embedded_plots(dataset: Path) -> None:
    path = write_report(str(dataset))
    assert path == str(dataset / REPORT_FILE)
    page = Path(path).read_text(encoding="utf-8")
    plots = _embedded_pngs(page)
    assert len(plots) == 4  # funnel, per-query counts, synset tail, image shapes
    assert all(plot.format == "PNG" and plot.width > 300 for plot in plots)
    # Self-contained: nothing is fetched from elsewhere when the file is opened (links are to the full
    # lists beside it).
    assert not re.search(r'src="(?!data:)', page)
    assert set(re.findall(r'href="([^"]*)"', page)) == {
        "query_counts.json",
        "vocabulary.json",
        "rejects/",
        "examples.json",
    }
    assert "top 3 of 3 queries by matches" in page and "top 2 of 2 synsets by count" in page
    for expected in ("fetch_timeout 1", "http_error 1", "read 10 → kept 4", "holds", "umbrella", "n04507155",
                     "ball.n.01", "4 samples read from the shards", "1 kept (count ≥ V_tau = 2)"):  # fmt: skip
        assert expected in page, expected


def test_report_notes_missing_optional_inputs_instead_of_failing(dataset: Path) -> None:
    for name in ("query_counts.json", "vocabulary.json", "00000.tar"):
        (dataset / name).unlink()
    page = Path(write_report(str(dataset))).read_text(encoding="utf-8")
    assert len(_embedded_pngs(page)) == 1
    assert "query_counts.json not found" in page and "vocabulary.json not found" in page
    assert "no samples with original_width" in page


def test_broken_conservation_is_flagged(dataset: Path) -> None:
    (dataset / "stats.json").write_text(json.dumps({**STATS, "conserved": False}), encoding="utf-8")
    assert "DOES NOT HOLD" in Path(write_report(str(dataset))).read_text(encoding="utf-8")


def test_a_directory_without_stats_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ReportError, match=r"no stats\.json"):
        write_report(str(tmp_path))
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert main([]) == 2


def test_cli_writes_the_report(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(dataset)]) == 0
    assert capsys.readouterr().out.strip() == str(dataset / REPORT_FILE)
    assert (dataset / REPORT_FILE).stat().st_size > 10_000


def test_report_shows_reject_examples_kept_samples_and_the_domain_summary(dataset: Path) -> None:
    thumbnail = base64.b64encode(_jpeg()).decode("ascii")
    examples = {
        "per_reason": 8,
        "reasons": {
            "image/image_too_small": [
                {"key": "k1", "url": "http://a.example/1.jpg", "caption": "a tiny ball", "detail": "900 bytes",
                 "thumbnail": thumbnail},
            ],
            "text/text_too_short": [
                {"key": "k2", "url": "http://a.example/2.jpg", "caption": "ball", "detail": "", "thumbnail": None}
            ],
        },
    }  # fmt: skip
    (dataset / "examples.json").write_text(json.dumps(examples), encoding="utf-8")
    domains = {
        "domains": 3, "listed": 1,
        "top": [{"domain": "a.example", "urls": 6, "ok": 5, "failed": 1, "reasons": {"http_error": 1}}],
        "others": {"domains": 2, "urls": 1, "ok": 0, "failed": 1, "reasons": {"fetch_timeout": 1}},
    }  # fmt: skip
    (dataset / "stats.json").write_text(json.dumps({**STATS, "fetch_domains": domains}), encoding="utf-8")
    page = Path(write_report(str(dataset))).read_text(encoding="utf-8")
    assert "image/image_too_small" in page and "a tiny ball" in page and "no picture" in page
    assert page.count(f"data:image/jpeg;base64,{thumbnail}") == 1  # the reject's own thumbnail
    assert "Kept samples of the 3 queries" in page and "query “ball”" in page
    assert "top 1 of 3 domains by URLs" in page and "(2 other domains)" in page and "83%" in page
    jpegs = re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", page)
    assert len(jpegs) >= 1 + 4  # the reject thumbnail and at least the 4 kept samples (query "ball")
