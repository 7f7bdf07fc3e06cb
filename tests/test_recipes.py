"""Recipes by name: each resolves to its paper's settings, explicit options win, ALIGN runs without a query list."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filters.dedup import EXACT_DUPLICATE, NEAR_DUPLICATE
from filters.recipes import RECIPES
from pipelines.curate import main
from pipelines.launch_checks import OptionError
from pipelines.options import resolve
from tests.pipeline_fixtures import POOL_OPTIONS, shared_pool, shared_test_root


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "pool.jsonl").write_text('{"url": "http://a/x.jpg", "caption": "a dog on the beach"}\n')
    (tmp_path / "allow.json").write_text(json.dumps(["dog"]))
    return {"pool": tmp_path / "pool.jsonl", "allowlist": tmp_path / "allow.json", "out": tmp_path / "out"}


def _resolve(files: dict[str, Path], recipe: str, *extra: str):
    allow = [f"--allowlist={files['allowlist']}"] if RECIPES[recipe].matches_queries else []
    config, _ = resolve(
        [f"--input={files['pool']}", f"--output={files['out']}", f"--recipe={recipe}", *allow, *extra]
    )
    return config


def test_align_is_the_papers_rules_without_a_query_list(files: dict[str, Path]) -> None:
    config = _resolve(files, "align")
    assert config.allowlist is None and config.recipe == "align" and config.manifest()["recipe"] == "align"
    assert (config.text.min_words, config.text.max_words, config.text.max_images_per_text) == (3, 20, 10)
    assert config.rare_tokens == "pool"
    assert (config.image.min_side, config.image.max_aspect) == (200, 3.0)
    assert (config.dedup.max_alt_texts, config.dedup.mode) == (1000, "none")
    assert config.drop_nsfw_images and not _resolve(files, "wit").drop_nsfw_images


def test_wit_metaclip_datacomp_and_coyo(files: dict[str, Path]) -> None:
    wit, metaclip = _resolve(files, "wit"), _resolve(files, "metaclip")
    assert (wit.balance, wit.per_query_cap, wit.allowlist) == ("exact", 20_000, str(files["allowlist"]))
    assert (metaclip.balance, metaclip.per_query_cap, metaclip.match_semantics) == (
        "metaclip",
        20_000,
        "metaclip",
    )
    assert wit.match_semantics == "words"
    datacomp = _resolve(files, "datacomp-basic")
    assert (datacomp.text.min_words, datacomp.image.min_side, datacomp.image.max_aspect) == (3, 200, 3.0)
    assert datacomp.rare_tokens == "off" and datacomp.dedup.mode == "none" and datacomp.allowlist is None
    assert datacomp.languages == ("en",) and datacomp.text.min_chars == 6
    coyo = _resolve(files, "coyo")
    assert (coyo.image.min_bytes, coyo.text.min_words, coyo.text.max_words, coyo.text.max_images_per_text) == (
        5_000, 3, 256, 10)  # fmt: skip
    assert coyo.drop_explicit_text and not _resolve(files, "align").drop_explicit_text
    assert coyo.require_noun and not datacomp.require_noun


def test_explicit_options_win_over_the_recipe(files: dict[str, Path]) -> None:
    config = _resolve(files, "align", "--max_words=30", "--dedup=exact")
    assert (config.text.max_words, config.dedup.mode, config.text.min_words) == (30, "exact", 3)


def test_recipe_mistakes_are_one_line(files: dict[str, Path]) -> None:
    with pytest.raises(OptionError, match="matches no query list: drop --allowlist"):
        _resolve(files, "align", f"--allowlist={files['allowlist']}")
    with pytest.raises(OptionError, match="--allowlist is required"):
        resolve([f"--input={files['pool']}", f"--output={files['out']}", "--recipe=wit"])


def test_print_recipe_shows_settings_and_what_is_left_out(capsys: pytest.CaptureFixture) -> None:
    assert main(["--print-recipe", "align"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("recipe align: Jia et al. 2021")
    assert "--max_words 20" in out and "no --allowlist" in out and "not run by this project yet" in out
    assert main(["--print-recipe", "coyo"]) == 0
    assert "  --drop_explicit_text\n" in capsys.readouterr().out  # a switch is printed as one


@pytest.mark.slow
def test_align_curates_the_pool_without_matching_balancing_or_image_dedup(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pool = shared_pool(shared_test_root(tmp_path_factory))
    out = tmp_path / "align"
    argv = [
        f"--input={pool.tars}",
        f"--eval_blocklist={pool.eval_images}",
        f"--output={out}",
        *POOL_OPTIONS,
        "--recipe=align",
    ]  # fmt: skip (report included: it must cope with no query counts)
    assert main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    rejects = pq.read_table(out / "rejects").to_pylist()
    reasons = {r["reason"] for r in rejects}
    assert not reasons & {EXACT_DUPLICATE, NEAR_DUPLICATE, "query_over_cap", "no_query_match"}
    assert "eval_duplicate" in reasons  # the eval blocklist still applies
    assert json.loads((out / "manifest.json").read_text())["config"]["recipe"] == "align"
    assert stats["read"] == stats["kept"] + sum(r["dropped"] for r in stats["stages"]) and stats["kept"] > 0
    assert not (out / "query_counts.json").exists() and (out / "report.html").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["coyo", "datacomp-basic"])
def test_recipes_without_queries_curate_the_pool_by_their_rules(
    recipe: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pool = shared_pool(shared_test_root(tmp_path_factory))
    out = tmp_path / recipe
    argv = [f"--input={pool.tars}", f"--eval_blocklist={pool.eval_images}", f"--output={out}", "--shard_size=4",
            "--v_tau=2", "--tokenizer_vocab_size=200", "--no_report", f"--recipe={recipe}"]  # fmt: skip
    assert main(argv) == 0
    rejects = pq.read_table(out / "rejects").to_pylist()
    reasons = {r["reason"] for r in rejects}
    assert not reasons & {EXACT_DUPLICATE, NEAR_DUPLICATE, "query_over_cap", "no_query_match"}
    assert "eval_duplicate" in reasons and {"image_too_small", "image_bad_aspect"} <= reasons
    if recipe == "datacomp-basic":  # no shared-alt-text or rare-token rule in DataComp's basic filter
        assert "text_shared_by_many_images" not in reasons
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["recipe"] == recipe and manifest["total_samples"] > 0
    languages = {json.loads(line)["language"] for line in _sample_jsons(out)}
    assert languages and (recipe != "datacomp-basic" or languages == {"en"})


def _sample_jsons(out: Path) -> list[str]:
    import tarfile

    lines = []
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as archive:
            lines += [
                archive.extractfile(m).read().decode()
                for m in archive.getmembers()
                if m.name.endswith(".json")
            ]
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["wit", "metaclip"])
def test_query_recipes_curate_the_pool_by_their_matching_and_balance(
    recipe: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """WIT: word matching and an exact cap per query. MetaCLIP: its substr_matching exactly (kept samples'
    queries and the no-match rejects agree with a restatement of MetaCLIP's code) and its sampling."""
    from tests.test_matching import metaclip_substr_matching

    pool = shared_pool(shared_test_root(tmp_path_factory))
    out = tmp_path / recipe
    argv = [f"--input={pool.tars}", f"--allowlist={pool.allowlist}", f"--output={out}", *POOL_OPTIONS,
            "--no_report", f"--recipe={recipe}"]  # fmt: skip
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["recipe"] == recipe and manifest["total_samples"] > 0
    assert manifest["config"]["balance"] == ("exact" if recipe == "wit" else "metaclip")
    queries = json.loads(pool.allowlist.read_text())
    samples = [json.loads(line) for line in _sample_jsons(out)]
    unmatched = [r for r in pq.read_table(out / "rejects").to_pylist() if r["reason"] == "no_query_match"]
    assert samples and unmatched  # both sides of the match decision are exercised
    if recipe == "metaclip":
        for sample in samples:
            expected = [queries[i] for i in metaclip_substr_matching(sample["caption"], queries)]
            assert sorted(sample["queries"]) == sorted(expected), sample["caption"]
        assert all(not metaclip_substr_matching(r["caption"], queries) for r in unmatched)
    else:
        credited = [sample["credited_query"] for sample in samples]
        assert max(credited.count(query) for query in set(credited)) <= 5  # POOL_OPTIONS' exact cap
