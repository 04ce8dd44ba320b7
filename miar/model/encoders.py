"""One modality's encoder: projection to the shared width -> padded steps zeroed -> contextual encoder
(transformer, LSTM or positions only) -> pooling. :class:`ModalityEncoder` is that stack, written once;
``miar.model.build.build_encoders`` makes one per modality from the config and every model takes them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from miar.model.layers import Block, Dropout, MaskedNorm, key_mask, packed_lstm, pool


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


class ModalityEncoder(nn.Module):
    """Projection -> mask -> contextual encoder (``None``: none, e.g. early fusion's inputs) -> pooling.

    Returns the encoded steps and their pool at the target step (masked mean without one)."""

    def __init__(self, proj: Projection, context: ContextEncoder | None):
        super().__init__()
        self.proj, self.context = proj, context

    @property
    def width(self) -> int:
        return self.proj.lin.out_features

    def forward(self, x: Tensor, mask: Tensor, target: Tensor | None) -> tuple[Tensor, Tensor]:
        h = self.proj(x, mask) * mask.unsqueeze(-1)  # (B, T, d)
        if self.context is not None:
            h = self.context(h, mask, target)  # (B, T, d)
        return h, pool(h, mask, target)  # (B, T, d), (B, d)


def encode_all(encoders: nn.ModuleDict, batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Every modality's encoded steps and pooled feature: (modality -> (B, T_m, d), modality -> (B, d))."""
    seqs, pooled = {}, {}
    for m, enc in encoders.items():  # the builder's fixed modality order
        seqs[m], pooled[m] = enc(batch.x[m], batch.mask[m], batch.target)
    return seqs, pooled
