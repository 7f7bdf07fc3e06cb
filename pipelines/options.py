"""The ``curate`` flags (``pipelines.option_flags.CurationOptions``) validated into a typed CurationConfig.

``resolve(argv)`` parses (``parse``) and then builds each part of the config with its checks, all
BEFORE a pipeline is built: a wrong path or a bad value raises ``OptionError`` whose message is the
one line ``curate`` prints. Each option becomes one typed value, once (the fetch flags one
``FetchConfig``, ``--eval_blocklist`` its kind, ``--rare_tokens`` its mode).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Any

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from filters.allowlist import load_allowlist
from filters.dedup import DedupConfig
from filters.eval_blocklist import EvalBlocklist
from filters.image import ImageRules
from filters.nsfw_image import default_model_path
from filters.rare_tokens import TokenFrequencyTable
from filters.recipes import Recipe, recipe_named
from filters.synsets import LabelerConfig, perceptron_data_installed
from filters.text import TextRules
from pipelines.beam_flags import check_beam_flags
from pipelines.config import CurationConfig
from pipelines.examples import ExampleSettings
from pipelines.fetch import FetchConfig
from pipelines.files import local_copy
from pipelines.kept_fetched import done_sources
from pipelines.launch_checks import OptionError, check_columns, check_filesystem, fail, first_line
from pipelines.option_flags import CurationOptions, HelpFormatter
from pipelines.output_dir import check_output
from pipelines.read import Columns, ReadLimits, match_inputs

__all__ = ["CurationOptions", "OptionError", "check_filesystem", "is_eval_set", "parse", "parser", "resolve"]


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit; we want one line
        raise OptionError(message)


class RecipePrinted(Exception):
    """``--print-recipe``: the message is the recipe as text."""


def _nsfw_extra_present(wanted: bool) -> bool:
    if wanted:
        try:
            default_model_path()
        except RuntimeError:
            fail(
                "--drop_nsfw_images needs the nsfw extra: pip install -e '.[nsfw]' (NudeNet, AGPL-3.0 model)"
            )
    return wanted


def _languages(value: str) -> tuple[str, ...]:
    codes = tuple(sorted({code.strip().lower() for code in value.split(",") if code.strip()}))
    for code in codes:
        _require(
            code.replace("-", "").isalpha() and len(code) <= 12,
            f"--languages: {code!r} is not a language code; give CLD2 codes such as en or en,de,zh-Hant",
        )
    return codes


def parser() -> argparse.ArgumentParser:
    """The curation flags alone (Beam's are parsed by Beam)."""
    result = _OneLineParser(
        prog="curate",
        description="Curate image/alt-text pairs into WebDataset shards. Beam's own options "
        "(--runner, --direct_num_workers, Dataflow's, ...) pass through to Beam.",
        allow_abbrev=False,
        formatter_class=HelpFormatter,
    )
    CurationOptions._add_argparse_args(result)
    return result


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise OptionError(message)


def _fetch(args: argparse.Namespace) -> tuple[FetchConfig, tuple[str, ...]]:
    """The fetch flags as one ``FetchConfig``, and the names of the settings given (what the manifest records)."""
    _require(
        not args.allow_file_urls or bool(args.file_url_root),
        "--allow_file_urls needs --file_url_root DIR: the folder file:// URLs may read from",
    )
    _require(
        not args.file_url_root or os.path.isdir(args.file_url_root),
        f"--file_url_root {args.file_url_root}: not a folder",
    )
    given = {
        "timeout": args.fetch_timeout,
        "retries": args.fetch_retries,
        "threads": args.fetch_threads,
        "max_bytes": args.max_image_bytes,
        "user_agent_token": args.user_agent_token,
        "allow_private_addresses": args.allow_private_addresses or None,
        "allow_file_urls": args.allow_file_urls or None,
        "allowed_networks": tuple(n.strip() for n in args.allowed_networks.split(","))
        if args.allowed_networks
        else None,
        "deadline": args.fetch_deadline,
        "total_deadline": args.fetch_total_deadline,
        "file_url_root": os.path.realpath(args.file_url_root) if args.file_url_root else None,
        "keep_alive": False if args.no_keep_alive else None,
        "backoff_base": args.fetch_backoff,
        "backoff_cap": args.fetch_backoff_cap,
        "host_concurrency": args.host_concurrency,
        "host_rate": args.host_rate,
        "robots_txt": args.robots_txt or None,
        "disallowed_header_directives": tuple(
            d.strip() for d in args.opt_out_directives.split(",") if d.strip()
        ),
    }
    given = {name: value for name, value in given.items() if value is not None}
    return _built(FetchConfig, "fetch options", **given), tuple(sorted(given))


def _built(factory: Any, flag_names: str, **values: Any) -> Any:
    try:
        return factory(**values)
    except ValueError as error:
        raise OptionError(f"{flag_names}: {error}") from None


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Step 1: the curation flags (a recipe's values as their defaults) and the flags left for Beam."""
    own = parser()
    args, beam_args = own.parse_known_args(argv)
    if args.print_recipe:
        raise RecipePrinted(recipe_named(args.print_recipe).describe())
    if args.recipe:  # the recipe's values become defaults; options given on the command line win
        own.set_defaults(**recipe_named(args.recipe).settings)
        args, beam_args = own.parse_known_args(argv)
    check_beam_flags(beam_args, [s for a in own._actions for s in a.option_strings], fail)
    # Object stores read their settings (S3's region and keys, ...) from Beam's flags; the pipeline
    # sets the same options again when it is built.
    FileSystems.set_options(PipelineOptions(beam_args))
    return args, beam_args


def resolve(argv: list[str]) -> tuple[CurationConfig, list[str]]:
    """Parses and validates the curation flags; returns the config and the flags left for Beam.

    Step 1 ``parse``; step 2 one builder per part of the config, each checking its own flags (and the
    files they name) as it builds that part's typed value; nothing is checked twice."""
    args, beam_args = parse(argv)
    recipe = recipe_named(args.recipe) if args.recipe else None
    patterns, inputs, columns = _inputs(args)
    rare, token_frequencies = _rare_tokens(args)
    allowlist = _allowlist(args, recipe)
    image = _image_rules(args)
    eval_blocklist, eval_images = _eval_set(args, image)
    fetch, fetch_given = _fetch(args)
    _require(args.per_query_cap >= 1, "--per_query_cap must be at least 1")
    _require(
        math.isfinite(args.pre_download_margin) and args.pre_download_margin >= 0,
        "--pre_download_margin must be a number >= 0",
    )
    _require(args.v_tau >= 0, "--v_tau must be >= 0")
    _require(
        args.tokenizer_vocab_size == 0 or args.tokenizer_vocab_size >= 100,
        "--tokenizer_vocab_size must be 0 (no tokenizer) or at least 100",
    )
    _require(args.tokenizer_max_captions >= 1, "--tokenizer_max_captions must be at least 1")
    _require(args.shard_size >= 1, "--shard_size must be at least 1")
    _require(args.shard_max_bytes >= 1 << 20, "--shard_max_bytes must be at least 1 MiB")
    _require(args.seed >= 0, "--seed must be >= 0")
    _require(args.top_domains >= 1, "--top_domains must be at least 1")
    _require(args.max_reject_extra_bytes >= 256, "--max_reject_extra_bytes must be at least 256")
    _require(
        math.isfinite(args.progress_interval) and args.progress_interval > 0,
        "--progress_interval must be a number of seconds > 0",
    )
    kept_done = _kept_fetched(args, inputs)
    check_filesystem(args.output, "write")
    replaces = check_output(args.output, [unit.path for unit in inputs], args.overwrite, fail)
    config = CurationConfig(
        inputs=tuple(inputs),
        input_patterns=patterns,
        columns=columns,
        read_limits=_built(
            ReadLimits,
            "--max_row_bytes/--max_extra_value_bytes/--max_input_file_bytes/--max_image_bytes",
            max_row_bytes=args.max_row_bytes,
            max_extra_value_bytes=args.max_extra_value_bytes,
            max_file_bytes=args.max_input_file_bytes,
            max_member_bytes=fetch.max_bytes,
        ),
        output=args.output.rstrip("/") or "/",
        overwrite=args.overwrite,
        replaces=replaces,
        allowlist=allowlist,
        recipe=args.recipe,
        case_sensitive_match=args.case_sensitive_match,
        match_semantics=args.match_semantics,
        languages=_languages(args.languages),
        drop_explicit_text=args.drop_explicit_text,
        require_noun=args.require_noun,
        drop_nsfw_images=_nsfw_extra_present(args.drop_nsfw_images),
        text=_built(
            TextRules,
            "--min_words/--max_words/--max_caption_chars/--max_images_per_alt_text",
            min_words=args.min_words,
            max_words=args.max_words,
            max_chars=args.max_caption_chars,
            min_chars=args.min_caption_chars,
            max_images_per_text=args.max_images_per_alt_text,
        ),
        rare_tokens=rare,
        token_frequencies=token_frequencies,
        top_unigrams=args.top_unigrams,
        top_bigrams=args.top_bigrams,
        balance=args.balance,
        per_query_cap=args.per_query_cap,
        pre_download_margin=args.pre_download_margin,
        fetch=fetch,
        fetch_given=fetch_given,
        image=image,
        dedup=_dedup(args),
        eval_blocklist=eval_blocklist,
        eval_images=eval_images,
        labeler=LabelerConfig(sense=args.synset_sense, tagger=_tagger(args.synset_tagger)),
        v_tau=args.v_tau,
        tokenizer_vocab_size=args.tokenizer_vocab_size,
        tokenizer_max_captions=args.tokenizer_max_captions,
        shard_size=args.shard_size,
        shard_max_bytes=args.shard_max_bytes,
        seed=args.seed,
        report=not args.no_report,
        examples=_built(
            ExampleSettings,
            "--reject_examples/--reject_thumbnail_bytes",
            per_reason=args.reject_examples,
            thumbnail_bytes=args.reject_thumbnail_bytes,
            seed=args.seed,
        ),
        max_reject_extra_bytes=args.max_reject_extra_bytes,
        keep_fetched=args.keep_fetched.rstrip("/") if args.keep_fetched else None,
        kept_done=kept_done,
        keep_fetched_shard_size=args.keep_fetched_shard_size,
        top_domains=args.top_domains,
        progress=args.progress,
        progress_interval=args.progress_interval,
    )
    return config, beam_args


def _inputs(args: argparse.Namespace) -> tuple[tuple[str, ...], list, Columns]:
    """--input's patterns, the files they match (one kind of input per run) and the columns read."""
    _require(
        bool(args.input), "--input is required: candidate files (parquet, jsonl, csv, tsv) or WebDataset .tar"
    )
    patterns = tuple(p.strip() for p in args.input.split(",") if p.strip())
    for pattern in patterns:
        check_filesystem(pattern, "read")
    try:
        inputs = match_inputs(list(patterns), args.input_format)
    except OSError as error:  # the store answered with an error (credentials, permissions, network)
        raise OptionError(f"--input: {first_line(error)}") from None
    except ValueError as error:
        raise OptionError(str(error).splitlines()[0]) from None
    _require(bool(args.output), "--output is required: the dataset directory to write")
    columns = Columns(url=args.url_column, caption=args.caption_column, key=args.key_column or None)
    check_columns(inputs[0], columns)
    _require(
        len({unit.format == "webdataset" for unit in inputs}) == 1,
        "--input mixes WebDataset shards and candidate tables: curate them in separate runs",
    )
    return patterns, inputs, columns


def _allowlist(args: argparse.Namespace, recipe: Recipe | None) -> str | None:
    """--allowlist, required by the recipes that match queries and refused by the others; loaded once."""
    if recipe is None or recipe.matches_queries:
        _require(bool(args.allowlist), "--allowlist is required: the query list pairs are matched against")
    else:
        _require(
            not args.allowlist,
            f"--recipe {recipe.name} matches no query list: drop --allowlist, or use --recipe wit/metaclip",
        )
    _check_file("--allowlist", args.allowlist, load_allowlist)
    return args.allowlist or None


def _rare_tokens(args: argparse.Namespace) -> tuple[str, str | None]:
    """The rare-token mode and its table file. ``--token_frequencies`` alone means ``file``; with another
    mode set (on the command line or by a recipe) it is an error, never a silent switch."""
    mode = args.rare_tokens or ("file" if args.token_frequencies else "pool")
    if args.token_frequencies:
        _require(
            mode == "file",
            f"--token_frequencies is read only with --rare_tokens=file, but the mode is {mode}"
            + (f" (set by --recipe {args.recipe})" if args.recipe else "")
            + ": add --rare_tokens=file or drop --token_frequencies",
        )
        _check_file("--token_frequencies", args.token_frequencies, TokenFrequencyTable.load)
    _require(
        mode != "file" or bool(args.token_frequencies), "--rare_tokens=file needs --token_frequencies PATH"
    )
    _require(
        args.top_unigrams >= 1 and args.top_bigrams >= 0, "--top_unigrams must be >= 1, --top_bigrams >= 0"
    )
    return mode, args.token_frequencies or None


def _image_rules(args: argparse.Namespace) -> ImageRules:
    return _built(
        ImageRules,
        "image options",
        min_side=args.min_image_side,
        max_aspect=args.max_aspect_ratio,
        max_pixels=args.max_image_pixels,
        min_bytes=args.min_image_file_bytes,
        output_side=args.image_size,
        jpeg_quality=args.jpeg_quality,
    )


def _eval_set(args: argparse.Namespace, image: ImageRules) -> tuple[str | None, bool]:
    """--eval_blocklist and whether it names evaluation images (hashed at launch) or a blocklist JSON."""
    path = args.eval_blocklist or None
    images = is_eval_set(path)
    blocklist = None if images else _check_file("--eval_blocklist", path, EvalBlocklist.load)
    _require(
        blocklist is None or blocklist.output_side == image.output_side,
        f"--eval_blocklist was hashed at output side {getattr(blocklist, 'output_side', '')} but --image_size is "
        f"{image.output_side}: rebuild it with the same size, or pass the evaluation images themselves",
    )
    return path, images


def _dedup(args: argparse.Namespace) -> DedupConfig:
    dedup = _built(
        DedupConfig,
        "--phash_radius/--dedup_max_group/--max_alt_texts_per_image",
        radius=args.phash_radius,
        max_group=args.dedup_max_group,
        mode=args.dedup,
        max_alt_texts=args.max_alt_texts_per_image,
    )
    _require(dedup.max_alt_texts >= 1, "--max_alt_texts_per_image must be at least 1")
    return dedup


def _tagger(tagger: str) -> str:
    """``auto`` pinned at launch: workers must not pick another tagger than the launcher saw."""
    if tagger == "auto":
        return "perceptron" if perceptron_data_installed() else "pattern"
    return tagger


def _kept_fetched(args: argparse.Namespace, inputs: list) -> tuple[tuple[str, str], ...]:
    """--keep_fetched checked; the input files whose fetch results it already holds."""
    if not args.keep_fetched:
        return ()
    _require(
        any(unit.format != "webdataset" for unit in inputs),
        "--keep_fetched keeps what the fetch stage downloads: WebDataset input is not fetched",
    )
    _require(args.keep_fetched_shard_size >= 1, "--keep_fetched_shard_size must be at least 1")
    check_filesystem(args.keep_fetched, "write")
    if FileSystems.get_scheme(args.keep_fetched) is None and os.path.exists(args.keep_fetched):
        _require(
            os.path.isdir(args.keep_fetched), f"--keep_fetched {args.keep_fetched} is a file: name a folder"
        )
    done = done_sources(args.keep_fetched.rstrip("/"))
    sources = {unit.source for unit in inputs}
    return tuple(sorted((source, folder) for source, folder in done.items() if source in sources))


def is_eval_set(path: str | None) -> bool:
    """Whether ``--eval_blocklist`` names evaluation images (a local folder or tar) rather than a blocklist JSON."""
    return path is not None and (os.path.isdir(path) or path.endswith((".tar", ".tar.gz", ".tgz")))


def _check_file(flag: str, path: str | None, loader: Callable[[str], Any]) -> Any:
    """The file exists and its loader accepts it (a bad allowlist fails here, not on a worker an hour in);
    returns what the loader made, or None without a path."""
    if path is None:
        return None
    check_filesystem(path, "read")
    try:
        found = FileSystems.exists(path)
    except (ValueError, OSError) as error:
        raise OptionError(f"{flag} {path}: {first_line(error)}") from None
    _require(found, f"{flag} file not found: {path}")
    try:
        with local_copy(path) as local:
            return loader(local)
    except (ValueError, OSError) as error:
        raise OptionError(f"{flag}: {first_line(error)}") from None
