"""OpenAI CLIP's byte-level BPE (OpenCLIP's ``SimpleTokenizer``) as a ``tokenizers`` tokenizer.

OpenCLIP ships the merges as ``bpe_simple_vocab_16e6.txt.gz``. The vocabulary it builds from them,
in id order: the 256 byte symbols (GPT-2's printable byte alphabet, see ``byte_alphabet``), the same with the end-of-word
mark ``</w>``, one token per merge (48,894), then ``<|startoftext|>`` and ``<|endoftext|>``: 49,408.
Text is lower-cased with whitespace collapsed, split into letter runs, single digits, runs of other
symbols and the English contractions, each piece byte-encoded and merged with ``</w>`` on its last
symbol; ``<|startoftext|> … <|endoftext|>`` around it, padded with 0 by the caller as OpenCLIP pads.
The one step not reproduced is ``ftfy.fix_text`` + ``html.unescape`` of the input (mojibake and HTML
entities): curated captions are already normalised by ``filters/text.py``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
MERGES = 49152 - 256 - 2  # the merges OpenAI's tokenizer uses (its file holds more)
START, END = "<|startoftext|>", "<|endoftext|>"
PIECES = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def byte_alphabet() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes, in vocabulary order: the bytes that are printable
    themselves first, then the other bytes as characters 256, 257, …"""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    others = [byte for byte in range(256) if byte not in printable]
    return [chr(byte) for byte in printable] + [chr(256 + n) for n in range(len(others))]


def clip_bpe_tokenizer(vocab_file: str | Path) -> Tokenizer:
    """The tokenizer equivalent to OpenCLIP's SimpleTokenizer for the merges in ``vocab_file``."""
    lines = gzip.decompress(Path(vocab_file).read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGES + 1]]
    alphabet = byte_alphabet()
    tokens = alphabet + [symbol + "</w>" for symbol in alphabet] + ["".join(pair) for pair in merges]
    vocab = {token: index for index, token in enumerate([*tokens, START, END])}
    tokenizer = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, end_of_word_suffix="</w>", unk_token=END, fuse_unk=False)
    )
    tokenizer.add_special_tokens([START, END])
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PIECES), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{START} $A {END}", special_tokens=[(START, vocab[START]), (END, vocab[END])]
    )
    return tokenizer
