"""Captions → fixed-length token ids with a ``tokenizers`` tokenizer (its JSON).

Two kinds of tokenizer are used: the dataset's own WordPiece ``tokenizer.json`` (``[CLS] … [SEP]``,
``[PAD]`` = 0, the dataset contract) and, for a model imported from OpenCLIP, OpenAI's CLIP BPE
(``<|startoftext|> … <|endoftext|>``, padded with 0 as OpenCLIP pads; ``trainer/interop/clip_bpe.py``).
Either way the post-processor adds a start and an end-of-text token; truncation to the model's
context length is done by ``tokenizers`` itself, which accounts for those, so the end of text (where
CLIP-style towers pool) is always the last real token; padding fills the rest with id 0.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer

PAD_ID = 0


class CaptionTokenizer:
    """Batch tokenisation to a LongTensor [B, context_length], padded with 0."""

    def __init__(self, tokenizer_json: str, context_length: int) -> None:
        self.tokenizer_json = tokenizer_json
        self.context_length = context_length
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        pad_id = self.tokenizer.token_to_id("[PAD]")
        if pad_id is not None and pad_id != PAD_ID:
            raise ValueError(f"tokenizer.json defines [PAD]={pad_id}: the towers expect padding id 0")
        probe = self.tokenizer.encode("a").ids
        if probe[1:-1] != self.tokenizer.encode("a", add_special_tokens=False).ids or len(probe) < 3:
            raise ValueError(
                "tokenizer.json does not add start and end-of-text tokens ([CLS] … [SEP]): "
                "its post-processor is missing"
            )
        self.cls_id, self.sep_id = probe[0], probe[-1]
        self.tokenizer.enable_truncation(max_length=context_length)
        pad_token = self.tokenizer.id_to_token(PAD_ID) or "[PAD]"
        self.tokenizer.enable_padding(pad_id=PAD_ID, pad_token=pad_token, length=context_length)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def eos_id(self) -> int:
        """The end-of-text token the text tower pools at ([SEP], or BPE's <|endoftext|>)."""
        return self.sep_id

    def __call__(self, captions: list[str]) -> torch.Tensor:
        encodings = self.tokenizer.encode_batch(captions)
        return torch.tensor([encoding.ids for encoding in encodings], dtype=torch.long)

    def __getstate__(self) -> dict:
        # DataLoader workers receive a pickled copy; rebuild the Rust object from its JSON.
        return {"tokenizer_json": self.tokenizer_json, "context_length": self.context_length}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["tokenizer_json"], state["context_length"])
