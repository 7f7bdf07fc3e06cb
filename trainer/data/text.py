"""Captions → fixed-length token ids with the dataset's own ``tokenizer.json``.

The dataset's WordPiece tokenizer encodes ``[CLS] … [SEP]``; truncation to the model's
context length is done by ``tokenizers`` itself, which accounts for the special tokens, so
``[SEP]`` (the end of text, where CLIP-style towers pool) is always the last real token, and
padding fills the rest with id 0 (``[PAD]``).
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
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        pad_id = self.tokenizer.token_to_id("[PAD]")
        if pad_id != PAD_ID or self.cls_id is None or self.sep_id is None:
            raise ValueError("tokenizer.json must define [PAD]=0, [CLS] and [SEP] (the dataset contract)")
        probe = self.tokenizer.encode("a").ids
        if probe[0] != self.cls_id or probe[-1] != self.sep_id:
            raise ValueError("tokenizer.json does not add [CLS] … [SEP]: its post-processor is missing")
        self.tokenizer.enable_truncation(max_length=context_length)
        self.tokenizer.enable_padding(pad_id=PAD_ID, pad_token="[PAD]", length=context_length)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def __call__(self, captions: list[str]) -> torch.Tensor:
        encodings = self.tokenizer.encode_batch(captions)
        return torch.tensor([encoding.ids for encoding in encodings], dtype=torch.long)

    def __getstate__(self) -> dict:
        # DataLoader workers receive a pickled copy; rebuild the Rust object from its JSON.
        return {"tokenizer_json": self.tokenizer_json, "context_length": self.context_length}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["tokenizer_json"], state["context_length"])
