"""Language identification throughput: ``identify_language`` (CLD2) against the text rules, per core.

The captions are the labelled set's (``tests/data/caption_nouns.tsv``: English plus 12 other
languages) repeated to the requested count. The baseline is ``normalize_text`` + ``check_caption``
on the same captions, the work every caption already gets; rounds interleave baseline and
identifier (A, B, A, B, ...) and the medians are printed with their ratio. One process, one
thread: the figure is per core. Run: ``python benchmarks/bench_language.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filters.language import identify_language
from filters.text import check_caption, normalize_text

CAPTIONS_TSV = Path(__file__).resolve().parents[1] / "tests" / "data" / "caption_nouns.tsv"


def load_captions() -> list[tuple[str, str]]:
    """(language, caption) rows of the labelled set."""
    rows = []
    for line in CAPTIONS_TSV.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            language, caption = line.split("\t")[:2]
            rows.append((language, caption))
    return rows


def rate(fn, captions: list[str]) -> float:
    start = time.process_time()
    for caption in captions:
        fn(caption)
    return len(captions) / max(time.process_time() - start, 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="3,000 captions and 3 rounds instead of 100,000 and 5"
    )
    args = parser.parse_args(argv)
    rows = load_captions()
    count, rounds = (3_000, 3) if args.quick else (100_000, 5)
    captions = [rows[i % len(rows)][1] for i in range(count)]

    def baseline(caption: str) -> object:
        return check_caption(normalize_text(caption))

    base, ident = [], []
    for _ in range(rounds):
        base.append(rate(baseline, captions))
        ident.append(rate(identify_language, captions))
    base_rate, ident_rate = statistics.median(base), statistics.median(ident)
    print(f"captions: {count} ({len(rows)} distinct), rounds: {rounds}, CPU time of this process (one core)")
    print(f"text rules (baseline):  {base_rate:10,.0f} captions/s")
    print(f"identify_language:      {ident_rate:10,.0f} captions/s  ({ident_rate / base_rate:.2f}x baseline)")
    agree = Counter((lang, identify_language(text)) for lang, text in rows)
    right = sum(n for (lang, guess), n in agree.items() if guess.code == lang)
    reliable = sum(n for (_, guess), n in agree.items() if guess.reliable)
    print(f"on the labelled set: {right}/{len(rows)} guessed right, {reliable}/{len(rows)} called reliably")
    return 0


if __name__ == "__main__":
    sys.exit(main())
