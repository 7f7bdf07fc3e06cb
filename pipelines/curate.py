"""The curation job: ``python -m pipelines.curate --input … --allowlist … --output …`` (console: ``curate``).

Stage graph (every stage a composite transform returning ``(kept, rejects)`` unless noted)::

    ReadCandidates → CleanText → DropSharedAltTexts → MatchQueries
      → BalanceBeforeDownload → FetchImages          (candidate tables only; WebDataset input has bytes)
      → CheckAndHashImages → SplitPayloads (light records | JPEGs)
      → Deduplicate → BalanceQueries → LabelSynsets ─┬→ BuildVocabulary   → vocabulary.json
                                                     ├→ TrainTokenizer    → tokenizer.json
                                                     └→ WriteShards (+ JPEGs) → NNNNN.tar
    all rejects → WriteRejects (rejects/*.parquet), WriteFunnel (stats.json); WriteQueryCounts;
    WriteManifest (sizes.json, manifest.json) last; then report.html.

Runner: Beam's flags pass through (``--runner=DataflowRunner --project … --setup_file ./setup.py``).
Without ``--runner`` the job runs on the in-process FnApiRunner (DirectRunner would first try to
download the Prism binary); ``--direct_running_mode=multi_processing --direct_num_workers=N`` uses N
worker processes.
"""

from __future__ import annotations

import logging
import sys


def _quiet_optional_extras() -> None:
    """Beam's GCP client package logs a warning at import when the optional GCP extras are absent: noise
    for a local run that would also break the one-line error contract."""
    logging.getLogger().addFilter(lambda record: "apitools not found" not in record.getMessage())


def main(argv: list[str] | None = None) -> int:
    """Runs the job; 0 on success, 2 (one line on stderr) for a bad option."""
    _quiet_optional_extras()
    # Beam and the stages are imported after the filter above is in place.
    from pipelines.job import OptionError, prepare, run
    from pipelines.options import RecipePrinted

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config, options = prepare(argv)
        lines = run(config, options)
    except RecipePrinted as printed:
        print(printed)
        return 0
    except OptionError as error:
        print(f"curate: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help, when main() is called as a function
        return exit_.code if isinstance(exit_.code, int) else 0
    for line in lines:
        print(f"curate: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
