"""The training data stream: equal full batches per rank, skip-and-count, V_tau, tokens, replay, URLs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
import torch

from tests.trainer_fixtures import make_dataset, train_tokenizer
from trainer.config import DataConfig
from trainer.data import build_train_batches, resolve_dataset
from trainer.data.meta import DatasetError
from trainer.data.samples import BatchCollator, SampleProcessor
from trainer.data.shards import FailureCounter, open_shard, raw_samples, sequential
from trainer.data.stream import StreamConfig, make_train_batches
from trainer.data.text import CaptionTokenizer
from trainer.data.transforms import CropSpec
from trainer.data.verify import verify_shards
from trainer.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Uneven shards (one holds a single sample); sample 5 has a truncated JPEG.
    return make_dataset(tmp_path_factory.mktemp("data") / "ds", 60, shard_sizes=[1, 40, 19], image_size=40)


def batches_for(dataset: Path, rank: int, workers: int, state=None, v_tau=None, **data):
    meta = resolve_dataset([str(dataset)], None, v_tau, need_tokenizer=True, need_vocabulary=True)
    config = DataConfig(
        paths=[str(dataset)],
        batch_size=8,
        workers=workers,
        segment_steps=4,
        shuffle_buffer=16,
        shuffle_initial=4,
        **data,
    )
    batches = build_train_batches(
        config, meta, image_size=32, context_length=12, hflip=True, seed=3, rank=rank, state=state
    )
    return batches, meta, config


def take(batches, steps: int) -> list[dict]:
    taken = [next(batches) for _ in range(steps)]
    batches.close()
    return taken


def test_every_rank_gets_the_same_number_of_full_batches_from_uneven_shards(dataset: Path) -> None:
    per_rank = []
    for rank, workers in ((0, 2), (1, 0)):
        batches, meta, _ = batches_for(dataset, rank, workers)
        taken = take(batches, 12)  # 96 samples per rank: more than the 60 the shards hold
        for batch in taken:
            assert batch["image"].shape == (8, 3, 32, 32) and batch["image"].dtype == torch.uint8
            assert batch["tokens"].shape == (8, 12) and batch["targets"].shape == (
                8,
                len(meta.vocabulary.ids),
            )
            assert len(batch["key"]) == 8
        per_rank.append([key for batch in taken for key in batch["key"]])
    assert len(per_rank[0]) == len(per_rank[1]) == 96
    assert per_rank[0] != per_rank[1]  # ranks draw their own streams


class SpyProcessor(SampleProcessor):
    """Records every raw sample key the stream hands to the processor."""

    seen: list[str]

    def __call__(self, raw, rng):
        self.seen.append(raw["__key__"])
        return super().__call__(raw, rng)


def test_undecodable_samples_are_skipped_and_counted_exactly(dataset: Path) -> None:
    corrupt = "s000000005"
    meta = resolve_dataset([str(dataset)], None, None, need_tokenizer=True, need_vocabulary=False)
    processor = SpyProcessor(32, CropSpec(32), True, None)
    processor.seen = []
    collator = BatchCollator(CaptionTokenizer(meta.tokenizer_json, 12), None)
    config = StreamConfig(meta.shard_urls, 3, 0, 1, 4, 8, 16, 4)
    batches = make_train_batches(config, processor, collator, workers=0)
    taken = take(batches, 16)
    draws = processor.seen.count(corrupt)
    assert draws >= 1  # 128 samples from 60: the corrupt one comes up
    assert corrupt not in {key for batch in taken for key in batch["key"]}
    assert dict(batches.failures) == {"image_decode_error": draws}
    assert len(processor.seen) == 16 * 8 + draws


def test_v_tau_is_applied_when_the_data_is_loaded(dataset: Path) -> None:
    full = resolve_dataset([str(dataset)], None, None, need_tokenizer=False, need_vocabulary=True).vocabulary
    pruned = resolve_dataset([str(dataset)], None, 10, need_tokenizer=False, need_vocabulary=True).vocabulary
    assert "n03135532" in full.ids and "n03135532" not in pruned.ids  # the rare "cross" falls under V_tau=10
    assert set(pruned.ids) < set(full.ids) and pruned.v_tau == 10
    batches, meta, _ = batches_for(dataset, 0, 0, v_tau=10)
    taken = take(batches, 6)
    assert meta.vocabulary == pruned
    assert all(batch["targets"].shape[1] == len(pruned.ids) for batch in taken)
    with pytest.raises(DatasetError, match=r"lower data\.v_tau"):
        resolve_dataset([str(dataset)], None, 10**6, need_tokenizer=False, need_vocabulary=True)


def test_tokens_are_cls_text_sep_then_zero_padding(dataset: Path) -> None:
    tokenizer = CaptionTokenizer((dataset / "tokenizer.json").read_text(), context_length=8)
    short, long = tokenizer(["a ball", "the red ball on a white background " * 4])
    cls, sep = tokenizer.cls_id, tokenizer.sep_id
    assert short.tolist()[:4] == [cls, short[1].item(), short[2].item(), sep] and short[4:].eq(0).all()
    assert long[0] == cls and long[-1] == sep and long.ne(0).all()  # truncated, [SEP] kept last
    bare = train_tokenizer(["a ball"])
    bare.post_processor = None
    with pytest.raises(ValueError, match="post-processor"):
        CaptionTokenizer(bare.to_str(), 8)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_restarted_loader_continues_with_the_same_batches(dataset: Path, workers: int) -> None:
    batches, _, _ = batches_for(dataset, 0, workers)
    reference = take(batches, 11)
    batches, _, _ = batches_for(dataset, 0, workers)
    take(batches, 5)  # stop mid-segment, on an odd step
    resumed, _, _ = batches_for(dataset, 0, workers, state=batches.state_dict())
    continued = take(resumed, 6)
    assert [b["key"] for b in continued] == [b["key"] for b in reference[5:]]
    for got, want in zip(continued, reference[5:]):
        assert torch.equal(got["image"], want["image"]) and torch.equal(got["tokens"], want["tokens"])


def test_a_changed_stream_layout_warns_and_starts_fresh_streams(dataset: Path) -> None:
    batches, _, _ = batches_for(dataset, 0, 2)
    take(batches, 3)
    with pytest.warns(UserWarning, match="fresh streams"):
        resumed, _, _ = batches_for(dataset, 0, 0, state=batches.state_dict())
    assert resumed.step == 3 and resumed.positions == {}


def test_shard_urls_pipe_and_fsspec_are_read(dataset: Path) -> None:
    shard = dataset / "00002.tar"
    memory = "memory://shards/00002.tar"
    with fsspec.open(memory, "wb") as handle:
        handle.write(shard.read_bytes())
    keys = {}
    for url in (str(shard), f"pipe:cat {shard}", f"file://{shard}", memory):
        keys[url] = [raw["__key__"] for raw in raw_samples([{"url": url}], FailureCounter())]
    assert len(set(map(tuple, keys.values()))) == 1 and len(keys[memory]) == 19
    handle = open_shard(memory)
    assert handle.read(1) and not handle.close()
    meta = resolve_dataset([f"pipe:cat {dataset}/0000{{1..2}}.tar"], str(dataset), None, True, False)
    assert len(meta.shard_urls) == 2 and meta.total_samples is None and meta.tokenizer_json


def test_missing_shards_are_counted_not_fatal(dataset: Path) -> None:
    failures = FailureCounter()
    urls = [{"url": str(dataset / "nope.tar")}, {"url": str(dataset / "00000.tar")}]
    assert [raw["__key__"] for raw in raw_samples(urls, failures)] == ["s000000000"]
    assert failures == {"shard_open_error": 1}


def test_bad_locations_get_one_line_errors(tmp_path: Path, dataset: Path) -> None:
    with pytest.raises(DatasetError, match=r"has no manifest.json: run curate first"):
        resolve_dataset([str(tmp_path)], None, None, True, False)
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    (copy / "00001.tar").unlink()
    with pytest.raises(DatasetError, match=r"00001\.tar but it is missing"):
        resolve_dataset([str(copy)], None, None, True, False)
    with pytest.raises(DatasetError, match="--meta-dir"):
        resolve_dataset([str(dataset / "00000.tar")], None, None, True, False)


def test_loader_benchmark_runs_quick(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_loader.py", "--quick", "--work-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "baseline" in result.stdout and "loader" in result.stdout and "ratio" in result.stdout


def test_bad_shards_warn_once_and_count_the_samples_they_lose(
    dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "truncated"
    shutil.copytree(dataset, copy)
    shard = copy / "00001.tar"  # 40 samples
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    meta = resolve_dataset([str(copy)], None, None, need_tokenizer=False, need_vocabulary=False)
    assert meta.shard_samples[str(shard)] == 40
    for _ in range(2):  # a resampled shard comes round again: counted every time, warned once
        failures = FailureCounter()
        keys = [raw["__key__"] for raw in sequential(list(meta.shard_urls), failures, meta.shard_samples)]
        from_truncated = sum(1 for key in keys if "s000000001" <= key <= "s000000040")
        assert 0 < from_truncated < 40
        assert dict(failures) == {"shard_read_error": 40 - from_truncated}  # lost samples, not events
        assert len(keys) + failures["shard_read_error"] == 60
    warnings = [r.getMessage() for r in caplog.records if r.name == "trainer.data"]
    assert (
        len(warnings) == 1 and str(shard) in warnings[0] and f"{40 - from_truncated} of its 40" in warnings[0]
    )
    failures = FailureCounter()
    assert (
        list(raw_samples([{"url": str(tmp_path / "gone.tar")}], failures, {str(tmp_path / "gone.tar"): 7}))
        == []
    )
    assert failures == {"shard_open_error": 7}


def test_verify_shards_checks_sizes_and_sha256_against_the_manifest(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert verify_shards(resolve_dataset([str(dataset)], None, None, False, False), progress=False) == []
    copy = tmp_path / "damaged"
    shutil.copytree(dataset, copy)
    flipped = bytearray((copy / "00002.tar").read_bytes())
    flipped[700] ^= 0xFF  # same size, other bytes
    (copy / "00002.tar").write_bytes(bytes(flipped))
    (copy / "00001.tar").write_bytes((copy / "00001.tar").read_bytes()[:1000])
    problems = verify_shards(resolve_dataset([str(copy)], None, None, False, False), progress=False)
    assert len(problems) == 2
    assert "00001.tar: 1000 bytes, the manifest says" in problems[0] and "00002.tar: sha256" in problems[1]
    code = train_main(
        ["--data", str(copy), "--verify-shards", "--steps", "1", "--out", str(tmp_path / "run")]
    )
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert (
        code == 2
        and error.startswith("train: error: --verify-shards: 2 problem(s), first:")
        and "\n" not in error
    )
