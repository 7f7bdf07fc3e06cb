"""Running the real curation job on a hostile corpus in a subprocess, and reading back what it did.

``run_job`` starts ``python -m pipelines.curate`` and waits for it with ``os.wait4``, whose resource
usage is that one child's: its peak RSS is the bound the bomb cases are checked against.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from tests.hostile_corpus import Corpus

REPO = Path(__file__).resolve().parent.parent
# Peak RSS of the job with Beam, pyarrow, PIL, nltk and img2dataset loaded: 465 MiB over the tar corpus
# here, 849 MiB in one CI run (more bundles in flight); 702 MiB over the table corpus (48 fetch threads).
# Reading the 1.5 GiB tar member (2 GiB sparse one) or the 1.5 GiB gzip body whole would add at least that
# much (the unbounded reader peaked at 5.1-5.8 GiB on smaller bombs), so each bound sits well between.
TAR_RSS_BOUND = 1280 * 1024 * 1024
TABLE_RSS_BOUND = 1536 * 1024 * 1024


@dataclass
class JobRun:
    returncode: int
    stderr: str
    peak_rss: int
    output: Path

    def stats(self) -> dict:
        return json.loads((self.output / "stats.json").read_text())

    def rejects(self) -> list[dict]:
        return pq.read_table(self.output / "rejects").to_pylist()

    def samples(self) -> list[dict]:
        """Every kept sample's json, read back from the shards with tarfile."""
        found = []
        for shard in sorted(self.output.glob("*.tar")):
            with tarfile.open(shard) as tar:
                for member in tar.getmembers():
                    if member.name.endswith(".json"):
                        found.append(json.loads(tar.extractfile(member).read()))
        return found


def run_job(corpus: Corpus, root: Path, name: str) -> JobRun:
    output = root / name
    argv = [
        f"--input={corpus.inputs}",
        f"--allowlist={root / 'allowlist.json'}",
        f"--output={output}",
        *corpus.args,
    ]
    log = root / f"{name}.log"
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.curate", *argv], cwd=REPO, stdout=stderr, stderr=stderr, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return JobRun(process.returncode, log.read_text(), usage.ru_maxrss * 1024, output)


def _mentions(token: str, text: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(token)}(?![0-9])", text) is not None


def fates(corpus: Corpus, run: JobRun) -> dict[str, list[str]]:
    """Every caption token's fates as found in the output (kept, or stage/reason), by caption or url."""
    found: dict[str, list[str]] = {token: [] for token in corpus.captions}
    rows = [(f"{r['stage']}/{r['reason']}", r["caption"] + " " + r["url"]) for r in run.rejects()]
    rows += [("kept", s["caption"] + " " + s["url"]) for s in run.samples()]
    for fate, text in rows:
        for token in found:
            if _mentions(token, text):
                found[token].append(fate)
    return found


def mismatched_fates(corpus: Corpus, run: JobRun) -> dict[str, tuple[str, list[str]]]:
    """Tokens whose fate is not exactly the expected one (missing, different, or more than one)."""
    return {
        token: (corpus.captions[token], seen)
        for token, seen in fates(corpus, run).items()
        if seen != [corpus.captions[token]]
    }


def read_rejects_by_source(corpus: Corpus, run: JobRun) -> dict[str, Counter]:
    """Read-stage rejects attributed to their input file (by the detail's leading source, or the url)."""
    found: dict[str, Counter] = {}
    for row in run.rejects():
        if row["stage"] != "read":
            continue
        source = next(
            (s for s in corpus.read if row["detail"].startswith(f"{s} ") or row["url"].endswith(f"/{s}")),
            None,
        )
        found.setdefault(source or "?", Counter())[row["reason"]] += 1
    return found


def check_conservation(corpus: Corpus, run: JobRun) -> None:
    """read = kept + Σ dropped, from stats.json and again from the rejects table and the shards, and
    both equal to what the corpus holds; every key unique."""
    stats = run.stats()
    rejects, samples = run.rejects(), run.samples()
    assert stats["conserved"] is True
    assert stats["read"] == stats["kept"] + stats["dropped"] == corpus.expected_read
    assert len(rejects) + len(samples) == corpus.expected_read
    assert stats["kept"] == len(samples)
    by_reason = Counter(f"{r['stage']}/{r['reason']}" for r in rejects)
    assert dict(by_reason) == stats["dropped_by_reason"]
    keys = [r["key"] for r in rejects] + [s["key"] for s in samples]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
