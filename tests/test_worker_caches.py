"""Per-process caches of files (allowlist matcher, eval blocklist) reload a file rewritten at the same path.

A second job in the same process (a notebook, the tests, the in-process runner) must never curate
against the previous file's contents.
"""

from __future__ import annotations

import json

from pipelines import match_stages
from pipelines.dedup_stages import load_blocklist
from pipelines.match_stages import load_matcher


def test_matcher_is_rebuilt_when_the_allowlist_changes(tmp_path):
    path = tmp_path / "allowlist.json"
    path.write_text(json.dumps(["dog"]), encoding="utf-8")
    first = load_matcher(str(path), False)
    assert load_matcher(str(path), False) is first  # unchanged file: built once
    path.write_text(json.dumps(["dog", "red ball"]), encoding="utf-8")
    second = load_matcher(str(path), False)
    assert second is not first and second.entries == ["dog", "red ball"]
    assert [key for key in match_stages._MATCHERS._loaded if key[0] == str(path)] == [
        (str(path), False, "words")
    ]
    assert [second.entries[i] for i in second.match("a red ball")] == ["red ball"]


def test_blocklist_is_reloaded_when_the_file_changes(tmp_path):
    path = tmp_path / "blocklist.json"
    header = {"format_version": 1, "output_side": 256}

    def write(phashes):
        entries = [
            {"sha256": f"{i:064x}", "phash": p, "source": f"eval-{i}.jpg"} for i, p in enumerate(phashes)
        ]
        path.write_text(json.dumps({**header, "images": entries}), encoding="utf-8")

    write(["ffff0000ffff0000"])
    first = load_blocklist(str(path), 6)
    write(["ffff0000ffff0000", "00ff00ff00ff00ff"])
    second = load_blocklist(str(path), 6)
    assert len(first) == 1 and len(second) == 2


def test_importing_img2dataset_leaves_the_environment_as_it_was(monkeypatch):
    import os

    from pipelines import fetch_attempt

    monkeypatch.delenv("NO_ALBUMENTATIONS_UPDATE", raising=False)
    fetch_attempt.is_disallowed.cache_clear()
    check = fetch_attempt.is_disallowed()
    assert "NO_ALBUMENTATIONS_UPDATE" not in os.environ
    assert check.__module__ == "img2dataset.downloader"
