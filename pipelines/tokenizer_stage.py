"""TrainTokenizer: a WordPiece tokenizer (HF ``tokenizers``) trained on the kept captions → tokenizer.json.

The contract (ARCHITECTURE.md, read by ``trainer/data/text.py``): specials ``[PAD]`` = 0, ``[UNK]``,
``[CLS]``, ``[SEP]``, ``[MASK]``; encoding ``[CLS] $A [SEP]``; BERT's uncased normaliser and
pre-tokeniser, as ALIGN's BERT text tower uses.

Training runs on one worker, so the captions are a deterministic sample: the ``max_captions`` with
the smallest ``unit_hash(key, "tokenizer", seed)`` (a lifted ``Top`` combine), trained in that order.

Same captions → byte-identical tokenizer.json in every process. ``WordPieceTrainer`` on its own is
not: it gives the continuing-subword pieces (``##x``) their ids in Rust hash-map order, and those ids
break ties between equally frequent merges (huggingface/tokenizers#1794), so ids and even pieces
change from run to run. The trainer never re-numbers a piece it already holds, so we hand it every
``##x`` of the alphabet up front, in code-point order, next to the specials; then every id, and so
every tie, is fixed before the first merge. The alphabet is chosen by us, too (most frequent
characters that fit ``vocab_size``, never splitting a group of equal counts), because the trainer's
own ``limit_alphabet`` cut breaks count ties in hash order as well. The trained vocabulary is then
loaded into a fresh WordPiece model so that only the five real specials are special tokens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import apache_beam as beam
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer

from contract.files import TOKENIZER_FILE
from filters.hashing import unit_hash
from pipelines.files import write_bytes

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
UNK_TOKEN = "[UNK]"
CONTINUING_PREFIX = "##"


def bert_uncased(model: WordPiece) -> Tokenizer:
    """``model`` behind BERT's uncased normaliser and pre-tokeniser, with the WordPiece decoder."""
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUING_PREFIX)
    return tokenizer


def count_chars(tokenizer: Tokenizer, captions: Iterable[str]) -> Counter[str]:
    """Character counts exactly as the trainer sees them: in the normalised, pre-tokenised words."""
    counts: Counter[str] = Counter()
    for caption in captions:
        normalized = tokenizer.normalizer.normalize_str(caption)
        counts.update("".join(word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized)))
    return counts


def choose_alphabet(char_counts: Counter[str], vocab_size: int) -> list[str]:
    """The characters to keep, in code-point order: the most frequent ones whose bare and ``##`` forms
    fit in ``vocab_size`` beside the specials. A group of equally frequent characters is kept or
    dropped whole, so the cut never depends on an order the counts do not fix."""
    ranked = sorted(char_counts.values(), reverse=True)
    keep = min(len(ranked), max(0, (vocab_size - len(SPECIAL_TOKENS)) // 2))
    while 0 < keep < len(ranked) and ranked[keep - 1] == ranked[keep]:
        keep -= 1
    return sorted(char for char, count in char_counts.items() if keep and count >= ranked[keep - 1])


def train_wordpiece(captions: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """A BERT-style uncased WordPiece tokenizer trained on ``captions`` with the dataset's specials;
    the same captions give the same tokenizer.json bytes in any process."""
    captions = list(captions)
    learner = bert_uncased(WordPiece(unk_token=UNK_TOKEN, continuing_subword_prefix=CONTINUING_PREFIX))
    alphabet = choose_alphabet(count_chars(learner, captions), vocab_size)
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[*SPECIAL_TOKENS, *(CONTINUING_PREFIX + char for char in alphabet)],
        limit_alphabet=len(alphabet),
        continuing_subword_prefix=CONTINUING_PREFIX,
        show_progress=False,
    )
    learner.train_from_iterator(captions, trainer)
    vocab = learner.get_vocab(with_added_tokens=False)
    tokenizer = bert_uncased(
        WordPiece(vocab=vocab, unk_token=UNK_TOKEN, continuing_subword_prefix=CONTINUING_PREFIX)
    )
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(token, vocab[token]) for token in ("[CLS]", "[SEP]")],
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
