"""Text towers over the dataset's WordPiece ids: `[CLS] ... [SEP]` followed by [PAD] = 0.

- `CLIPTextTransformer` (Radford et al. 2021, §2.4): causal pre-LN transformer; the sequence is
  pooled at the end-of-text token: the first occurrence of `eos_id` when the config names it
  ([SEP] for the dataset's WordPiece tokenizer, <|endoftext|> for OpenAI's BPE; OpenCLIP's "eos"
  pooling), else the last non-pad position `(tokens != 0).sum(1) - 1`; LayerNorm, then a bias-free
  projection. Because of the causal mask nothing after the end of text can change the features.
- `BertTextEncoder` (Devlin et al. 2019, as used by ALIGN, Jia et al. 2021): bidirectional
  post-LN transformer with a key-padding mask (tokens == 0 are never attended to), pooled at [CLS]
  (position 0) and mapped by a linear projection. No token-type embeddings (one segment) and no
  pooler layer: ALIGN projects the [CLS] state directly. Dropout is not used.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.models.layers import Transformer, init_linear_layers

PAD_ID = 0


def _check_tokens(tokens: torch.Tensor, context_length: int) -> None:
    if tokens.dim() != 2 or tokens.dtype != torch.long:
        raise ValueError(f"tokens must be a LongTensor [B, L], got {tokens.dtype} {tuple(tokens.shape)}")
    if tokens.shape[1] > context_length:
        raise ValueError(
            f"token length {tokens.shape[1]} exceeds the tower's context_length {context_length}"
        )


class CLIPTextTransformer(nn.Module):
    """tokens [B, L] -> features [B, output_dim] taken at the end-of-text position."""

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        width: int,
        layers: int,
        heads: int,
        mlp_ratio: float,
        output_dim: int,
        eos_id: int | None = None,
        quick_gelu: bool = False,
    ) -> None:
        super().__init__()
        self.context_length = context_length
        self.eos_id = eos_id
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.transformer = Transformer(
            width, layers, heads, mlp_ratio, norm_first=True, quick_gelu=quick_gelu
        )
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, output_dim))
        self.feature_dim = output_dim
        # CLIP's initialisation (model.py, initialize_parameters).
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width**-0.5)
        init_linear_layers(self.transformer)

    def set_grad_checkpointing(self, enabled: bool) -> None:
        self.transformer.grad_checkpointing = enabled

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _check_tokens(tokens, self.context_length)
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        x = self.ln_final(self.transformer(x, is_causal=True))
        if self.eos_id is not None:
            end_of_text = (tokens == self.eos_id).int().argmax(dim=1)
        else:  # an all-pad row would give -1; clamp so it pools position 0 instead of wrapping around
            end_of_text = ((tokens != PAD_ID).sum(1) - 1).clamp(min=0)
        pooled = x[torch.arange(x.shape[0], device=x.device), end_of_text]
        return pooled @ self.text_projection


class BertTextEncoder(nn.Module):
    """tokens [B, L] -> features [B, output_dim] from the [CLS] state, pads masked out of attention."""

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        width: int,
        layers: int,
        heads: int,
        mlp_ratio: float,
        output_dim: int,
    ) -> None:
        super().__init__()
        self.context_length = context_length
        self.word_embeddings = nn.Embedding(vocab_size, width, padding_idx=PAD_ID)
        self.position_embeddings = nn.Embedding(context_length, width)
        self.ln_embed = nn.LayerNorm(width, eps=1e-12)
        self.transformer = Transformer(width, layers, heads, mlp_ratio, norm_first=False)
        self.proj = nn.Linear(width, output_dim)
        self.feature_dim = output_dim
        nn.init.trunc_normal_(self.word_embeddings.weight, std=0.02)
        nn.init.trunc_normal_(self.position_embeddings.weight, std=0.02)
        with torch.no_grad():
            self.word_embeddings.weight[PAD_ID].zero_()
        init_linear_layers(self)

    def set_grad_checkpointing(self, enabled: bool) -> None:
        self.transformer.grad_checkpointing = enabled

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _check_tokens(tokens, self.context_length)
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.ln_embed(self.word_embeddings(tokens) + self.position_embeddings(positions))
        attend = (tokens != PAD_ID)[:, None, None, :]  # [B, 1, 1, L]: True = key may be attended to
        x = self.transformer(x, attn_mask=attend)
        return self.proj(x[:, 0])
