"""CurationConfig: the validated, typed settings of one curation run (built by ``pipelines.options``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from filters import balance
from filters.dedup import DedupConfig
from filters.image import ImageRules
from filters.synsets import LabelerConfig
from filters.text import TextRules
from pipelines.examples import ExampleSettings
from pipelines.fetch_config import FetchConfig
from pipelines.read import Columns, InputFile, ReadLimits


@dataclass(frozen=True)
class CurationConfig:
    """Everything the job needs, validated; ``manifest()`` is what manifest.json records."""

    inputs: tuple[InputFile, ...]
    input_patterns: tuple[str, ...]
    columns: Columns
    read_limits: ReadLimits
    output: str
    overwrite: bool
    replaces: tuple[str, ...]  # the previous dataset's files --overwrite deletes (pipelines.output_dir)
    allowlist: str | None  # None: a recipe that matches no queries (no matching, no per-query balance)
    recipe: str | None
    case_sensitive_match: bool
    match_semantics: str  # filters.matching.SEMANTICS
    languages: tuple[str, ...]  # captions kept by language (CLD2 codes); empty: all
    drop_explicit_text: bool
    require_noun: bool  # COYO: text_no_noun (filters/noun_rule.py)
    drop_nsfw_images: bool
    text: TextRules
    rare_tokens: str
    token_frequencies: str | None
    top_unigrams: int
    top_bigrams: int
    balance: str
    per_query_cap: int
    pre_download_margin: float
    fetch: FetchConfig
    image: ImageRules
    dedup: DedupConfig
    eval_blocklist: str | None
    eval_images: bool  # --eval_blocklist names evaluation images (hashed at launch), not a blocklist JSON
    labeler: LabelerConfig
    v_tau: int
    tokenizer_vocab_size: int
    tokenizer_max_captions: int
    shard_size: int
    shard_max_bytes: int
    seed: int
    report: bool
    examples: ExampleSettings = field(default_factory=ExampleSettings)
    max_reject_extra_bytes: int = 4096  # carried columns kept per reject row (pipelines.stats.extra_json)
    keep_fetched: str | None = None  # pipelines.kept_fetched
    kept_done: tuple[tuple[str, str], ...] = ()  # (source, folder) of input files already kept there
    keep_fetched_shard_size: int = 10_000
    top_domains: int = 50  # hosts listed by name in stats.json's fetch_domains (pipelines.domain_stats)
    progress: str = "auto"  # pipelines.progress.MODES
    progress_interval: float = 30.0
    fetch_given: tuple[
        str, ...
    ] = ()  # the fetch settings set by a flag: what the manifest records of ``fetch``

    @property
    def fetches(self) -> bool:
        """Whether images are downloaded (candidate tables) or already present (WebDataset input)."""
        return any(unit.format != "webdataset" for unit in self.inputs)

    @property
    def pre_download_cap(self) -> int:
        return balance.pre_download_cap(self.pre_download_margin, self.per_query_cap)

    def manifest(self) -> dict[str, Any]:
        """The resolved config as JSON: no output path and no runner flags, so it depends on the data only."""
        skip = {"inputs", "output", "overwrite", "replaces", "report", "progress", "progress_interval"}
        skip |= {"keep_fetched", "kept_done", "keep_fetched_shard_size"}  # where images come from, not what
        skip |= {"eval_images", "fetch_given"}  # follow from eval_blocklist and the flags
        resolved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        resolved["fetch"] = {name: getattr(self.fetch, name) for name in self.fetch_given}
        return _jsonable(resolved)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
