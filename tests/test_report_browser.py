"""report.html of a real curation run, opened in a real headless Chromium (Debian's package) with every
network request refused: it loads, every image decodes (naturalWidth > 0), and a screenshot of it is
saved with the test's output (its path is printed and recorded as the test's ``screenshot`` property)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.pipeline_fixtures import Pool, reference_run, shared_pool, shared_test_root

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless, no sandbox (CI runs as root), and no way out: every host name resolves nowhere and any
# proxy lookup goes to a closed port, so a page that needed the network would show broken images.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--virtual-time-budget=15000",
]
# Run in the page after it loaded: how many images, and which did not decode.
_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.alt || i.src.slice(0, 60));
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify({images: images.length, broken: broken, title: document.title});
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = shared_test_root(tmp_path_factory)
    pool: Pool = shared_pool(root)
    return reference_run(pool, root)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "Chromium is missing: scripts/setup_env.sh installs Debian's chromium package"
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_report_loads_offline_every_image_renders_and_a_screenshot_is_kept(
    dataset: Path, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    report = dataset / "report.html"
    page = report.read_text(encoding="utf-8")
    assert all(src.startswith("data:image/") for src in re.findall(r'src="([^"]*)"', page))
    # Links only to files beside the report (the full lists), never elsewhere.
    assert all("//" not in href and ":" not in href for href in re.findall(r'href="([^"]*)"', page))
    for name in ("query_counts.json", "vocabulary.json", "examples.json"):
        assert f'href="{name}"' in page and (dataset / name).is_file()

    checked = tmp_path / "report.html"
    checked.write_text(page.replace("</body>", _CHECK + "</body>"), encoding="utf-8")
    dumped = _chromium(tmp_path, "--dump-dom", checked.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    found = re.search(r'<pre id="image-check">(.*?)</pre>', dumped.stdout, re.S)
    assert found, dumped.stdout[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["broken"] == [] and result["title"].startswith("Curation report")
    # 4 plots, thumbnails of image-stage and later rejects, and kept samples per query and synset.
    assert result["images"] >= 4 + 10 + 8, result

    screenshot = tmp_path / "report.png"
    shot = _chromium(tmp_path, "--window-size=1280,4000", f"--screenshot={screenshot}", report.as_uri())
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    with Image.open(screenshot) as image:
        assert image.size == (1280, 4000)
        # Not a blank page: the funnel's bars and the thumbnails give thousands of colours.
        assert len(image.convert("RGB").getcolors(1 << 24) or []) > 1000
    record_property("screenshot", str(screenshot))
    print(f"report screenshot: {screenshot}")
