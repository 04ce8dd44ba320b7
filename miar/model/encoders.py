"""Per-modality projection to the shared width and contextual encoders (transformer, LSTM or none)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from miar.model.layers import Block, Dropout, MaskedNorm, key_mask, packed_lstm


class Projection(nn.Module):
    """Linear map of one modality to width ``d``, then normalization and dropout."""

    def __init__(self, d_in: int, d: int, norm: str, dropout: float):
        super().__init__()
        self.lin = nn.Linear(d_in, d)
        self.norm = MaskedNorm(d, norm)
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.drop(self.norm(self.lin(x), mask))  # (B, T, d)


class ContextEncoder(nn.Module):
    """Contextual encoder over one modality's steps, with learned positions and a target marker.

    ``kind``: ``transformer`` (masked self-attention blocks), ``lstm`` (bidirectional, as bc-LSTM)
    or ``none`` (positions only).
    """

    def __init__(self, d: int, kind: str, n_layers: int, n_heads: int, dropout: float, max_len: int):
        super().__init__()
        self.kind = kind
        self.pos = nn.Embedding(max_len, d)
        self.target = nn.Parameter(0.02 * torch.randn(d))
        if kind == "transformer":
            self.blocks = nn.ModuleList(Block(d, n_heads, dropout) for _ in range(n_layers))
            self.ln = nn.LayerNorm(d)
        elif kind == "lstm":
            self.lstm = nn.LSTM(d, d // 2, num_layers=n_layers, batch_first=True, bidirectional=True)
        elif kind != "none":
            raise ValueError(f"unknown encoder {kind!r}")

    def forward(self, x: Tensor, mask: Tensor, target: Tensor | None) -> Tensor:
        t = x.shape[1]
        if t > self.pos.num_embeddings:
            raise ValueError(f"sequence of {t} steps exceeds model.max_len={self.pos.num_embeddings}")
        x = x + self.pos.weight[:t]  # (B, T, d)
        if target is not None and target.shape == mask.shape:
            x = x + target.unsqueeze(-1).to(x.dtype) * self.target  # mark whom we predict
        if self.kind == "transformer":
            allow = key_mask(mask)  # (B, 1, 1, T)
            for blk in self.blocks:
                x = blk(x, allow=allow)
            x = self.ln(x)
        elif self.kind == "lstm":
            x = packed_lstm(self.lstm, x, mask)  # (B, T, d), real steps only
        return x * mask.unsqueeze(-1).to(x.dtype)
