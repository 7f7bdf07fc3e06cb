"""TrainTokenizer: a deterministic WordPiece tokenizer.json that keeps the dataset contract.

The cross-process test is the one that matters: the library's ``WordPieceTrainer`` alone gives a
different tokenizer.json in almost every fresh process on this corpus (huggingface/tokenizers#1794),
so equal hashes from processes with different hash seeds show the fix holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import apache_beam as beam
from tokenizers import Tokenizer

from filters.hashing import unit_hash
from pipelines.tokenizer_stage import (
    SPECIAL_TOKENS,
    TOKENIZER_FILE,
    TrainTokenizer,
    choose_alphabet,
    train_wordpiece,
)

REPO = Path(__file__).resolve().parent.parent
SUBJECTS = ["green meadow", "storm clouds", "sand dune", "yellow flower", "old wood", "rain drops"]
PLACES = ["landscape", "garden", "desert", "window", "forest"]
TIMES = ["in the morning", "on a sunny day", "under a clear sky", "at dusk"]
# Many words of equal count: the ties that WordPieceTrainer breaks in hash-map order.
CAPTIONS = [f"{subject} {place} {time}" for subject in SUBJECTS for place in PLACES for time in TIMES] + [
    "Café crème brûlée, naïve façade!",
    "Rocket #42 launches at 06:30",
    "a cat's whiskers",
]

HASH_IN_FRESH_PROCESS = """
import hashlib, json, sys
from pipelines.tokenizer_stage import train_wordpiece
captions, vocab_size = json.loads(sys.stdin.read())
print(hashlib.sha256(train_wordpiece(captions, vocab_size).to_str().encode()).hexdigest())
"""


def tokenizer_hashes_in_fresh_processes(captions: list[str], vocab_size: int, seeds: list[int]) -> list[str]:
    """sha256 of tokenizer.json as trained in one new interpreter per hash seed, run side by side."""
    payload = json.dumps([captions, vocab_size])
    children = []
    for seed in seeds:
        env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)}
        child = subprocess.Popen(
            [sys.executable, "-c", HASH_IN_FRESH_PROCESS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
            text=True,
        )
        child.stdin.write(payload)
        child.stdin.close()
        children.append(child)
    hashes = [child.stdout.read().strip() for child in children]
    assert all(child.wait(timeout=120) == 0 for child in children)
    return hashes


def test_tokenizer_json_is_byte_identical_across_fresh_processes() -> None:
    hashes = tokenizer_hashes_in_fresh_processes(CAPTIONS, 120, seeds=[0, 1, 2, 3, 4])
    local = hashlib.sha256(train_wordpiece(CAPTIONS, 120).to_str().encode()).hexdigest()
    assert len(hashes) == 5 and set(hashes) == {local}


def test_round_trip_from_file_encodes_cls_caption_sep(tmp_path: Path) -> None:
    tokenizer_json = tmp_path / TOKENIZER_FILE
    tokenizer_json.write_text(train_wordpiece(CAPTIONS, 200).to_str())
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    assert [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    encoding = tokenizer.encode("Green meadow landscape at dusk")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    assert encoding.ids[0] == 2 and encoding.ids[-1] == 3 and 1 not in encoding.ids
    assert tokenizer.decode(encoding.ids) == "green meadow landscape at dusk"
    # As trainer/data/text.py uses it: truncation keeps [SEP] last, padding is id 0.
    tokenizer.enable_truncation(max_length=4)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=8)
    long_ids, short_ids = (e.ids for e in tokenizer.encode_batch(["green meadow landscape at dusk", "rain"]))
    assert len(long_ids) == 8 and long_ids[0] == 2 and long_ids[3] == 3 and long_ids[4:] == [0] * 4
    assert short_ids[:3] == [2, tokenizer.token_to_id("rain"), 3] and short_ids[3:] == [0] * 5


def test_only_the_five_specials_are_special_tokens() -> None:
    tokenizer = train_wordpiece(CAPTIONS, 200)
    saved = json.loads(tokenizer.to_str())
    assert [token["content"] for token in saved["added_tokens"]] == list(SPECIAL_TOKENS)
    assert saved["model"]["type"] == "WordPiece" and saved["post_processor"]["type"] == "TemplateProcessing"
    vocab = tokenizer.get_vocab()
    assert sorted(vocab.values()) == list(range(len(vocab)))  # ids are dense
    assert {"##e", "e", "meadow"} <= set(vocab)


def test_unknown_characters_map_to_unk() -> None:
    tokenizer = train_wordpiece(CAPTIONS, 200)
    encoding = tokenizer.encode("meadow ☃ ж")
    assert encoding.tokens == ["[CLS]", "meadow", "[UNK]", "[UNK]", "[SEP]"]


def test_vocab_size_is_respected_even_when_the_alphabet_does_not_fit() -> None:
    # 26 Latin + 33 Cyrillic letters: 5 specials + 2 * 59 > 100, so the rarest letters must go.
    cyrillic = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
    captions = [*CAPTIONS, *(letter * (i + 1) for i, letter in enumerate(cyrillic))]
    tokenizer = train_wordpiece(captions, 100)
    assert tokenizer.get_vocab_size() <= 100
    assert tokenizer.encode("а").tokens == ["[CLS]", "[UNK]", "[SEP]"]  # the rarest letter
    assert tokenizer.encode("я").tokens == ["[CLS]", "я", "[SEP]"]  # the most frequent one
    for vocab_size in (100, 150, 400):
        assert train_wordpiece(CAPTIONS, vocab_size).get_vocab_size() <= vocab_size


def test_alphabet_cut_keeps_or_drops_a_tie_group_whole() -> None:
    counts = Counter({"a": 5, "b": 3, "c": 3, "d": 1})
    assert choose_alphabet(counts, 5 + 2 * 3) == ["a", "b", "c"]
    assert choose_alphabet(counts, 5 + 2 * 2) == ["a"]  # b and c tie: both go rather than one by chance
    assert choose_alphabet(counts, 5 + 2 * 4) == ["a", "b", "c", "d"]
    assert choose_alphabet(Counter({"x": 2, "y": 2}), 5 + 2 * 1) == []


def run_stage(output: Path, records: list[dict], max_captions: int) -> None:
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | beam.Create(records, reshuffle=False)
            | TrainTokenizer(str(output), vocab_size=150, max_captions=max_captions, seed=7)
        )


def test_stage_trains_on_the_hash_sample_and_writes_tokenizer_json(tmp_path: Path) -> None:
    records = [{"key": f"k{i:03d}", "caption": caption} for i, caption in enumerate(CAPTIONS)]
    run_stage(tmp_path, records, max_captions=40)
    sample = sorted(records, key=lambda r: unit_hash(r["key"], "tokenizer", 7))[:40]
    expected = train_wordpiece([r["caption"] for r in sample], 150).to_str()
    assert (tmp_path / TOKENIZER_FILE).read_text() == expected
    assert expected != train_wordpiece(CAPTIONS, 150).to_str()  # the sample is not everything


def test_stage_with_no_captions_writes_a_specials_only_tokenizer(tmp_path: Path) -> None:
    run_stage(tmp_path, [], max_captions=40)
    tokenizer = Tokenizer.from_file(str(tmp_path / TOKENIZER_FILE))
    assert tokenizer.get_vocab() == {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    assert tokenizer.encode("anything at all").tokens == ["[CLS]", "[UNK]", "[UNK]", "[UNK]", "[SEP]"]
