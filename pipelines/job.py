"""Builds and runs the curation pipeline from a validated CurationConfig (``pipelines.curate`` is the CLI)."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import platform
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import create_runner

from contract.files import EVAL_BLOCKLIST_FILE, MANIFEST_FILE, REPORT_FILE, STATS_FILE
from filters.eval_blocklist import EvalSetError, build_eval_blocklist
from filters.nsfw_image import NudeNetDetector
from pipelines import match_stages
from pipelines.caption_stages import CheckCaptionLanguage
from pipelines.config import CurationConfig
from pipelines.dedup_stages import Deduplicate
from pipelines.domain_stats import SummariseDomains
from pipelines.examples import SelectRejectExamples, WriteExamples, chosen_keys, keys_without_thumbnail
from pipelines.fetch import FetchImages
from pipelines.files import join, write_json
from pipelines.image_stages import CheckAndHashImages, SplitPayloads
from pipelines.kept_fetched import FetchKeepingResults
from pipelines.label_stages import BuildVocabulary, LabelSynsets
from pipelines.match_stages import BalanceQueries, MatchQueries
from pipelines.options import OptionError, resolve
from pipelines.output_dir import remove_previous
from pipelines.progress import ProgressDisplay, run_with_progress, watched_pipeline
from pipelines.read import ReadCandidates
from pipelines.stats import WriteFunnel, WriteQueryCounts, WriteRejects
from pipelines.text_stages import CleanText, DropSharedAltTexts
from pipelines.tokenizer_stage import TrainTokenizer
from pipelines.write import WriteManifest, WriteShards

__all__ = ["OptionError", "build", "prepare", "run"]

DEFAULT_RUNNER = "FnApiRunner"
_VERSIONED = (
    "apache-beam",
    "pyarrow",
    "pillow",
    "numpy",
    "imagehash",
    "pyahocorasick",
    "nltk",
    "textblob",
    "tokenizers",
    "webdataset",
    "img2dataset",
)
_LOG = logging.getLogger(__name__)


def prepare(argv: list[str]) -> tuple[CurationConfig, PipelineOptions]:
    """Validated config and Beam options; raises OptionError (one line) for any user mistake."""
    config, beam_args = resolve(argv)
    if not any(arg == "--runner" or arg.startswith("--runner=") for arg in beam_args):
        beam_args = [*beam_args, f"--runner={DEFAULT_RUNNER}"]
    options = PipelineOptions(beam_args)
    runner = options.view_as(StandardOptions).runner
    try:
        create_runner(runner)
    except (ValueError, ImportError) as error:
        raise OptionError(f"--runner={runner}: {str(error).splitlines()[0]}") from None
    return config, options


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def blocklist_file(config: CurationConfig) -> str | None:
    """The blocklist JSON the workers load: the user's, or the one ``run`` hashes into the output."""
    if config.eval_blocklist is None:
        return None
    return join(config.output, EVAL_BLOCKLIST_FILE) if config.eval_images else config.eval_blocklist


def hash_blocklist(config: CurationConfig) -> Any:
    """Hashes a folder / tars of evaluation images once, at launch, exactly as the image stage hashes."""
    try:
        blocklist = build_eval_blocklist([config.eval_blocklist], config.image, config.dedup.radius)
    except EvalSetError as error:
        raise OptionError(f"--eval_blocklist: {' '.join(str(error).split())}") from None  # one line
    _LOG.info("eval blocklist: %d images hashed, skipped %s", len(blocklist), blocklist.skipped)
    return blocklist


def build(pipeline: beam.Pipeline, config: CurationConfig) -> list[str]:
    """Adds every stage of the job to ``pipeline``; returns the funnel's stage names in order."""
    out, seed = config.output, config.seed
    rejects: list[beam.PCollection] = []
    stages = [ReadCandidates.stage]
    domains = None

    def stage(records: beam.PCollection, label: str, transform: beam.PTransform) -> beam.PCollection:
        """``records`` through a filtering composite; its ``stage`` names its row of the funnel."""
        kept, dropped = records | label >> transform
        rejects.append(dropped)
        stages.append(transform.stage)
        return kept

    read, read_rejects = pipeline | "ReadCandidates" >> ReadCandidates(
        list(config.inputs), config.columns, config.read_limits, tag_source=bool(config.keep_fetched)
    )
    rejects.append(read_rejects)
    clean = CleanText(
        config.text, config.rare_tokens, config.token_frequencies, config.top_unigrams, config.top_bigrams
    )
    records = stage(read, "CleanText", clean)
    caption = CheckCaptionLanguage(
        config.languages, config.drop_explicit_text, config.require_noun, config.labeler.tagger
    )
    records = stage(records, "CheckCaptionLanguage", caption)
    records = stage(records, "DropSharedAltTexts", DropSharedAltTexts(config.text.max_images_per_text))
    # A recipe without a query list (ALIGN) neither matches nor balances.
    queries = config.allowlist is not None
    if queries:
        records = stage(
            records,
            "MatchQueries",
            MatchQueries(config.allowlist, config.case_sensitive_match, config.match_semantics),
        )
    matched = records
    if config.fetches and queries:
        pre = BalanceQueries(match_stages.PRE_DOWNLOAD_STAGE, config.balance, config.pre_download_cap, seed)
        records = stage(records, "BalanceBeforeDownload", pre)
    if config.fetches:
        fetch = config.fetch
        if config.keep_fetched:
            keep = FetchKeepingResults(
                fetch,
                config.keep_fetched,
                dict(config.kept_done),
                config.keep_fetched_shard_size,
                config.shard_max_bytes,
                config.read_limits.max_member_bytes,
            )
        else:
            keep = FetchImages(fetch)
        fetched, fetch_rejects = records | "FetchImages" >> keep
        rejects.append(fetch_rejects)
        stages.append(keep.stage)
        domains = (fetched, fetch_rejects) | "SummariseDomains" >> SummariseDomains(config.top_domains)
        records = fetched
    examples = config.examples
    detector = NudeNetDetector() if config.drop_nsfw_images else None
    records = stage(records, "CheckAndHashImages", CheckAndHashImages(config.image, examples, detector))
    light, payloads = records | "SplitPayloads" >> SplitPayloads()
    deduplicated = stage(light, "Deduplicate", Deduplicate(config.dedup, blocklist_file(config)))
    balanced = deduplicated
    if queries:
        final = BalanceQueries(match_stages.FINAL_STAGE, config.balance, config.per_query_cap, seed)
        balanced = stage(deduplicated, "BalanceQueries", final)
    labelled = balanced | "LabelSynsets" >> LabelSynsets(config.labeler)

    artefacts = {"vocabulary": labelled | "BuildVocabulary" >> BuildVocabulary(out, config.v_tau)}
    if config.tokenizer_vocab_size:
        artefacts["tokenizer"] = labelled | "TrainTokenizer" >> TrainTokenizer(
            out, config.tokenizer_vocab_size, config.tokenizer_max_captions, seed
        )
    all_rejects = rejects | "AllRejects" >> beam.Flatten()
    chosen = all_rejects | "SelectExamples" >> SelectRejectExamples(examples)
    shards, late_thumbnails = (labelled, payloads) | "WriteShards" >> WriteShards(
        out,
        config.shard_size,
        config.shard_max_bytes,
        seed,
        chosen | "LateThumbnailKeys" >> beam.Map(keys_without_thumbnail),
        examples.thumbnail_side,
        examples.thumbnail_bytes,
    )
    artefacts["examples"] = (chosen, late_thumbnails) | "WriteExamples" >> WriteExamples(
        out, examples.per_reason
    )
    artefacts["rejects"] = all_rejects | "WriteRejects" >> WriteRejects(
        out, chosen | "ThumbnailKeys" >> beam.Map(chosen_keys), config.max_reject_extra_bytes
    )
    funnel_inputs = (read, all_rejects, labelled) + ((domains,) if domains is not None else ())
    artefacts["stats"] = funnel_inputs | "WriteFunnel" >> WriteFunnel(out, stages)
    if queries:
        artefacts["query_counts"] = (
            matched,
            deduplicated,
            labelled,
        ) | "WriteQueryCounts" >> WriteQueryCounts(out, config.balance, config.per_query_cap)
    if config.eval_images:
        artefacts["eval_blocklist"] = pipeline | "BlocklistName" >> beam.Create([EVAL_BLOCKLIST_FILE])
    if config.report:
        artefacts["report"] = pipeline | "ReportName" >> beam.Create([REPORT_FILE])
    manifest = WriteManifest(out, config.manifest(), package_versions(), seed, artefacts)
    _ = shards | "WriteManifest" >> manifest
    return stages


def _write_report(output: str) -> str:
    try:
        from pipelines.report import write_report

        return f", report {write_report(output)}"
    except Exception as error:  # the dataset is complete; a plotting failure must not cost it
        _LOG.warning("report.html not written: %s", error)
        return f"; report not written ({type(error).__name__}: {error})"


def run(config: CurationConfig, options: PipelineOptions) -> list[str]:
    """Runs the job to completion; returns the funnel and a summary as printable lines."""
    blocklist = hash_blocklist(config) if config.eval_images else None
    pipeline, live = watched_pipeline(options, options.view_as(StandardOptions).runner)
    stages = build(pipeline, config)
    # Only now, with every option checked and the graph built, may the previous dataset go.
    remove_previous(config.replaces, config.output)
    if blocklist is not None:
        write_json(config.output, EVAL_BLOCKLIST_FILE, blocklist.to_json())
    run_with_progress(pipeline, live, stages, ProgressDisplay(config.progress, config.progress_interval))
    with FileSystems.open(join(config.output, STATS_FILE)) as handle:
        stats = json.loads(handle.read())
    with FileSystems.open(join(config.output, MANIFEST_FILE)) as handle:
        shards = len(json.loads(handle.read())["shards"])
    report = _write_report(config.output) if config.report else ""
    return [
        *funnel_lines(stats),
        f"read {stats['read']}, kept {stats['kept']} in {shards} shards under {config.output}{report}",
    ]


FUNNEL_REASONS = 12  # reasons listed per stage in the CLI funnel; the rest are counted, stats.json has all


def funnel_lines(stats: dict[str, Any], most: int = FUNNEL_REASONS) -> list[str]:
    """The funnel as a small table: stage, in, dropped, out, and every reason (past ``most``: "… and K more")."""
    lines = [f"{'stage':<22}{'in':>9}{'dropped':>9}{'out':>9}  reasons"]
    for row in stats["stages"]:
        ranked = sorted(row["reasons"].items(), key=lambda x: (-x[1], x[0]))
        reasons = ", ".join(f"{r} {n}" for r, n in ranked[:most])
        if len(ranked) > most:
            rest = sum(n for _, n in ranked[most:])
            reasons += f", … and {len(ranked) - most} more ({rest} records; see stats.json)"
        lines.append(f"{row['stage']:<22}{row['in']:>9}{row['dropped']:>9}{row['out']:>9}  {reasons}")
    return lines
