"""The ``curate`` flags (``CurationOptions``, a Beam ``PipelineOptions``): names, defaults, help text.

Defaults come from the papers through the ``filters`` dataclasses (TextRules, ImageRules, DedupConfig,
FetchConfig, LabelerConfig), so a threshold is written down once; ``pipelines.options`` validates the
values into a ``CurationConfig``. ``curate --help`` shows every option with its default.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from filters import balance
from filters.dedup import DEDUP_MODES, DEFAULT_DEDUP
from filters.image import DEFAULT_RULES
from filters.matching import SEMANTICS
from filters.recipes import RECIPES
from filters.synsets import LabelerConfig
from filters.text import DEFAULT_TEXT_RULES
from filters.thumbnails import DEFAULT_MAX_BYTES
from filters.vocabulary import V_TAU
from pipelines.domain_stats import DEFAULT_TOP_DOMAINS
from pipelines.examples import DEFAULT_PER_REASON
from pipelines.fetch_flags import add_fetch_flags
from pipelines.progress import DEFAULT_LOG_INTERVAL
from pipelines.progress import MODES as PROGRESS_MODES
from pipelines.read import FORMATS, Columns, ReadLimits
from pipelines.stats import DEFAULT_MAX_REJECT_EXTRA_BYTES

# Fetch failures and image rules often cost 30-50% of pairs (filters/balance.py): downloading twice the
# cap leaves about ``cap`` per head query after them.
DEFAULT_PRE_DOWNLOAD_MARGIN = 1.0
DEFAULT_SHARD_SIZE = 10_000  # img2dataset's and OpenCLIP's usual samples per shard
DEFAULT_SHARD_MAX_BYTES = 1 << 30  # 1 GiB: ~10,000 samples at 256 px are ~250 MB, so this rarely binds
DEFAULT_TOKENIZER_VOCAB = 30_522  # BERT-base's WordPiece vocabulary (ALIGN's text tower)
DEFAULT_TOKENIZER_CAPTIONS = 1_000_000
# ALIGN keeps the 100 million most frequent unigrams and bigrams; a side input of that size does not fit
# a worker, so the default keeps 1M of each (a pool with fewer distinct n-grams keeps them all).
DEFAULT_TOP_NGRAMS = 1_000_000


class CurationOptions(PipelineOptions):
    """The curation job's own flags; Beam's (``--runner``, Dataflow's, ...) pass through unchanged."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add("--input", help="candidate files: comma-separated paths or globs (local, gs://, s3://)")
        add(
            "--input_format",
            default="auto",
            choices=("auto", *FORMATS),
            help="auto: from the extension (.parquet, .jsonl/.json, .csv, .tsv, .tar = WebDataset shards)",
        )
        add("--url_column", default=Columns.url, help="column (or WebDataset json field) with the image URL")
        add("--caption_column", default=Columns.caption, help="column with the alt-text")
        add(
            "--key_column",
            help="column (or WebDataset json field) whose value is the sample key, e.g. DataComp's uid "
            "(no dots, slashes or spaces; a repeated key is read/key_duplicate); default: a hash of "
            "file, row and URL",
        )
        add("--output", help="dataset directory to write (local, gs://, s3://)")
        add("--overwrite", action="store_true", help="replace a dataset already in --output")
        add(
            "--allowlist",
            help="query allowlist (MetaCLIP-style JSON list of strings, or one entry per line); needed "
            "unless --recipe names one that matches no queries (align, datacomp-basic, coyo)",
        )
        add(
            "--recipe",
            choices=tuple(RECIPES),
            help="a published recipe's settings as the defaults (explicit options still win); "
            "see --print-recipe",
        )
        add(
            "--print-recipe",
            dest="print_recipe",
            choices=tuple(RECIPES),
            help="print a recipe's source, settings and what it leaves out, then exit",
        )
        add("--case_sensitive_match", action="store_true", help="MetaCLIP's case-sensitive matching")
        add(
            "--match_semantics",
            default="words",
            choices=SEMANTICS,
            help="words: entries match whole words, punctuation and whitespace normalised on both sides; "
            "metaclip: MetaCLIP's substr_matching exactly (case-sensitive, its punctuation quirks)",
        )
        add(
            "--min_words",
            type=int,
            default=DEFAULT_TEXT_RULES.min_words,
            help="drop alt-texts with fewer words (ALIGN: 3)",
        )
        add(
            "--max_words",
            type=int,
            default=DEFAULT_TEXT_RULES.max_words,
            help="drop alt-texts with more words (ALIGN: 20)",
        )
        add(
            "--max_caption_chars",
            type=int,
            default=DEFAULT_TEXT_RULES.max_chars,
            help="drop alt-texts longer than this many characters",
        )
        add(
            "--min_caption_chars",
            type=int,
            default=DEFAULT_TEXT_RULES.min_chars,
            help="drop alt-texts shorter than this many characters (text_too_short; DataComp basic: 6)",
        )
        add(
            "--require_noun",
            action="store_true",
            help="COYO-700M: drop alt-texts with no noun (text_no_noun; the --synset_tagger POS tagger)",
        )
        add(
            "--languages",
            default="",
            help="keep only captions in these languages (comma-separated CLD2 codes, e.g. en or en,de); "
            "default: every language (each sample's json still says its caption's language)",
        )
        add(
            "--drop_explicit_text",
            action="store_true",
            help="drop alt-texts with a term of the shipped explicit word list (text_nsfw, as COYO-700M)",
        )
        add(
            "--drop_nsfw_images",
            action="store_true",
            help="drop pornographic images (image_nsfw; NudeNet's detector on the CPU, the nsfw extra, "
            "AGPL-3.0 model; ~22 images/s/core)",
        )
        add(
            "--max_images_per_alt_text",
            type=int,
            default=DEFAULT_TEXT_RULES.max_images_per_text,
            help="drop alt-texts shared by more than this many distinct image URLs (ALIGN: 10)",
        )
        add(
            "--rare_tokens",
            default=None,
            choices=("pool", "file", "off"),
            help="rare-token rule: table counted over this pool, loaded from --token_frequencies, or off "
            "(default: file with --token_frequencies, else pool)",
        )
        add(
            "--token_frequencies",
            help="a saved TokenFrequencyTable JSON (read with --rare_tokens=file, the default when given)",
        )
        add(
            "--top_unigrams",
            type=int,
            default=DEFAULT_TOP_NGRAMS,
            help="rare-token rule: the most frequent unigrams that count as known (ALIGN: 100M of n-grams)",
        )
        add(
            "--top_bigrams",
            type=int,
            default=DEFAULT_TOP_NGRAMS,
            help="rare-token rule: the most frequent bigrams that count as known",
        )
        add(
            "--balance",
            default="exact",
            choices=("exact", "metaclip"),
            help="per-query cap: exact (at most --per_query_cap, credited to the rarest query) or "
            "MetaCLIP's keep-probability t / max(count, t)",
        )
        add(
            "--per_query_cap",
            type=int,
            default=balance.DEFAULT_QUERY_CAP,
            help="pairs per query (CLIP WIT: 20,000)",
        )
        add(
            "--pre_download_margin",
            type=float,
            default=DEFAULT_PRE_DOWNLOAD_MARGIN,
            help="the pre-download balance keeps cap × (1 + margin) per query, for pairs lost to fetch/dedup",
        )
        add_fetch_flags(add)
        add(
            "--max_row_bytes",
            type=int,
            default=ReadLimits.max_row_bytes,
            help="a longer JSONL line or CSV record is rejected unparsed (row_too_large)",
        )
        add(
            "--max_extra_value_bytes",
            type=int,
            default=ReadLimits.max_extra_value_bytes,
            help="a longer carried column is left out of the sample json and named in _omitted_columns",
        )
        add(
            "--max_input_file_bytes",
            type=int,
            default=ReadLimits.max_file_bytes,
            help="decompressed bytes read from one input file; the rest is one file_too_large reject",
        )
        add(
            "--min_image_side", type=int, default=DEFAULT_RULES.min_side, help="keep when shorter side > this"
        )
        add(
            "--max_aspect_ratio",
            type=float,
            default=DEFAULT_RULES.max_aspect,
            help="keep when long/short < this",
        )
        add("--max_image_pixels", type=int, default=DEFAULT_RULES.max_pixels, help="decompression-bomb bound")
        add(
            "--min_image_file_bytes",
            type=int,
            default=DEFAULT_RULES.min_bytes,
            help="drop downloads smaller than this many bytes",
        )
        add("--image_size", type=int, default=DEFAULT_RULES.output_side, help="shorter side of stored images")
        add("--jpeg_quality", type=int, default=DEFAULT_RULES.jpeg_quality, help="quality of stored JPEGs")
        add(
            "--phash_radius",
            type=int,
            default=DEFAULT_DEDUP.radius,
            help="near-duplicates: pHashes within this Hamming distance",
        )
        add(
            "--dedup",
            default=DEFAULT_DEDUP.mode,
            choices=DEDUP_MODES,
            help="image dedup: near (exact copies, then pHash near copies), exact (sha256 only), or none "
            "(ALIGN); the eval blocklist and --max_alt_texts_per_image apply in every mode",
        )
        add(
            "--dedup_max_group",
            type=int,
            default=DEFAULT_DEDUP.max_group,
            help="dedup: the most images one grouped unit of work holds; larger groups are split",
        )
        add(
            "--max_alt_texts_per_image",
            type=int,
            default=DEFAULT_DEDUP.max_alt_texts,
            help="drop images with more distinct alt-texts (ALIGN: 1000)",
        )
        add(
            "--eval_blocklist",
            help="evaluation images to keep out: a blocklist JSON (filters.eval_blocklist), "
            "or a local folder / .tar shards of images, hashed at launch into OUTPUT/eval_blocklist.json",
        )
        add(
            "--synset_sense",
            default=LabelerConfig.sense,
            choices=("first", "visual", "context"),
            help="WordNet sense per noun: the first (CatLIP), the first concrete one, or the one the "
            "caption's other words support best (context)",
        )
        add(
            "--synset_tagger",
            default=LabelerConfig.tagger,
            choices=("auto", "perceptron", "pattern"),
            help="POS tagger for caption nouns; auto = nltk's perceptron when its data is installed",
        )
        add("--v_tau", type=int, default=V_TAU, help="synsets seen fewer times are pruned (CatLIP: 500)")
        add("--tokenizer_vocab_size", type=int, default=DEFAULT_TOKENIZER_VOCAB, help="0: train no tokenizer")
        add(
            "--tokenizer_max_captions",
            type=int,
            default=DEFAULT_TOKENIZER_CAPTIONS,
            help="kept captions the WordPiece tokenizer is trained on (a hash-chosen sample)",
        )
        add("--shard_size", type=int, default=DEFAULT_SHARD_SIZE, help="target samples per shard")
        add(
            "--shard_max_bytes",
            type=int,
            default=DEFAULT_SHARD_MAX_BYTES,
            help="hard bound on a shard's bytes",
        )
        add("--seed", type=int, default=0, help="seed of every hash-based choice (sampling, shard buckets)")
        add("--no_report", action="store_true", help="skip report.html")
        add(
            "--reject_examples",
            type=int,
            default=DEFAULT_PER_REASON,
            help="rejects per stage/reason shown in report.html (chosen by key hash); image-stage ones "
            "keep a thumbnail in examples.json and rejects/*.parquet (0 = none)",
        )
        add(
            "--reject_thumbnail_bytes",
            type=int,
            default=DEFAULT_MAX_BYTES,
            help="largest thumbnail (JPEG, at most 128 px) kept for an example reject",
        )
        add(
            "--max_reject_extra_bytes",
            type=int,
            default=DEFAULT_MAX_REJECT_EXTRA_BYTES,
            help="carried input columns kept per reject row, as JSON (columns past it are named only)",
        )
        add(
            "--top_domains",
            type=int,
            default=DEFAULT_TOP_DOMAINS,
            help="hosts listed by name in stats.json's per-domain fetch summary (the rest are summed)",
        )
        add(
            "--progress",
            default="auto",
            choices=PROGRESS_MODES,
            help="live progress on stderr: one line updated in place (line), a line every "
            "--progress_interval seconds (log), off; auto = line on a terminal, log otherwise",
        )
        add(
            "--progress_interval",
            type=float,
            default=DEFAULT_LOG_INTERVAL,
            help="seconds between progress lines in log mode",
        )


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except for flags (off) and options that have none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action) or ""
