"""TrainTokenizer: a WordPiece tokenizer (HF ``tokenizers``) trained on the kept captions → tokenizer.json.

The contract (ARCHITECTURE.md, read by ``trainer/data/text.py``): specials ``[PAD]`` = 0, ``[UNK]``,
``[CLS]``, ``[SEP]``, ``[MASK]``; encoding ``[CLS] $A [SEP]``; BERT's uncased normaliser and
pre-tokeniser, as ALIGN's BERT text tower uses.

Training runs on one worker, so the captions are a deterministic sample: the ``max_captions`` with
the smallest ``unit_hash(key, "tokenizer", seed)`` (a lifted ``Top`` combine), trained in that order.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer

from filters.hashing import unit_hash
from pipelines.files import write_bytes

TOKENIZER_FILE = "tokenizer.json"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece(captions: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """A BERT-style uncased WordPiece tokenizer trained on ``captions`` with the dataset's specials."""
    tokenizer = Tokenizer(WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(captions), trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer


def _train_and_write(
    sample: list[tuple[float, str, str]], output: str, vocab_size: int, min_frequency: int
) -> str:
    tokenizer = train_wordpiece((caption for _, _, caption in sorted(sample)), vocab_size, min_frequency)
    return write_bytes(output, TOKENIZER_FILE, tokenizer.to_str().encode("utf-8"))


class TrainTokenizer(beam.PTransform):
    """Kept records → ``tokenizer.json`` in ``output``; returns a one-element PCollection of its name."""

    def __init__(
        self, output: str, vocab_size: int, max_captions: int, seed: int, min_frequency: int = 2
    ) -> None:
        super().__init__()
        self._output = output
        self._vocab_size = vocab_size
        self._max_captions = max_captions
        self._seed = seed
        self._min_frequency = min_frequency

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        seed = self._seed
        return (
            records
            | "Priority"
            >> beam.Map(lambda r: (unit_hash(r["key"], "tokenizer", seed), r["key"], r["caption"]))
            | "Sample" >> beam.combiners.Top.Smallest(self._max_captions)
            | "TrainAndWrite"
            >> beam.Map(_train_and_write, self._output, self._vocab_size, self._min_frequency)
        )
