"""MulT: Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences", ACL 2019.

Per modality a temporal Conv1d to width ``d`` (no bias, as MulT). For each target modality ``m`` and
each other modality ``s``, a cross-modal transformer (query = m's sequence, key/value = s's, key
padding masks); m's cross-modal outputs are concatenated and refined by a self-attention transformer
("memory"), whose last real step (or the target step of a context window) is m's vector. The vectors
are concatenated, passed through MulT's residual head (proj1-relu-dropout-proj2 + residual) and the
output layer. Every transformer scales its input by sqrt(width), adds sinusoidal positions, applies
dropout, runs pre-LN blocks (feed-forward 4x) and ends with a LayerNorm, as MulT's TransformerEncoder.

Differences from the reference code (also MMSA's copy): padding is masked (the reference attends to
padded steps and reads the last *padded* step); blocks use GELU and separate key/value LayerNorms;
one dropout rate stands for MulT's six (attention, relu, residual, embedding, output, text).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miar.data.batch import Batch, ordered
from miar.model.layers import Block, Dropout, dropout, key_mask, pool
from miar.model.output import ModelOutput


@functools.lru_cache(maxsize=64)
def sinusoid(t: int, d: int, device: torch.device) -> Tensor:
    """fairseq/MulT sinusoidal positions 1..t: -> (t, d), sin half then cos half (odd d: zero column).

    Cached per (t, d, device): one table serves every transformer and step."""
    half = d // 2
    freq = torch.exp(torch.arange(half, device=device) * -(math.log(10000.0) / max(half - 1, 1)))  # (d/2,)
    ang = torch.arange(1, t + 1, device=device)[:, None] * freq[None]  # (t, d/2)
    pe = torch.cat([torch.sin(ang), torch.cos(ang)], 1)  # (t, 2*(d/2))
    return F.pad(pe, (0, d - 2 * half))  # (t, d)


def last_step(h: Tensor, mask: Tensor) -> Tensor:
    """Each row's last real step: h (B, T, d), mask (B, T) -> (B, d)."""
    t = mask.shape[1]
    idx = (mask.long() * torch.arange(1, t + 1, device=mask.device)).argmax(1)  # (B,)
    return h[torch.arange(h.shape[0], device=h.device), idx]


def safe_allow(mask: Tensor) -> Tensor:
    """Key padding mask for SDPA; a row without real steps may attend everywhere (its output is unused)."""
    return key_mask(mask | ~mask.any(1, keepdim=True))  # (B, 1, 1, T)


class CrossTransformer(nn.Module):
    """MulT's TransformerEncoder: self-attention (``kv=None``) or cross-modal (query x, key/value kv)."""

    def __init__(self, d: int, n_heads: int, n_layers: int, dropout: float):
        super().__init__()
        self.scale = math.sqrt(d)
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d, n_heads, dropout, ff_mult=4) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d)

    def embed(self, x: Tensor) -> Tensor:
        return self.drop(self.scale * x + sinusoid(x.shape[1], x.shape[2], x.device).to(x.dtype))  # (B, T, d)

    def forward(self, x: Tensor, mask: Tensor, kv: Tensor | None = None,
                kv_mask: Tensor | None = None) -> Tensor:
        x = self.embed(x)  # (B, Tq, d)
        if kv is not None:
            kv = self.embed(kv)  # (B, Tk, d)
        allow = safe_allow(mask if kv is None else kv_mask)  # (B, 1, 1, Tk)
        for blk in self.blocks:
            x = blk(x, kv, allow)  # (B, Tq, d)
        return self.ln(x)


class MulT(nn.Module):
    """MulT over two or more modalities; ``mem_layers=None`` gives MulT's ``max(n_layers, 3)``."""

    def __init__(self, dims: dict[str, int], *, d: int = 30, n_heads: int = 5, n_layers: int = 4,
                 dropout: float = 0.1, mem_layers: int | None = None, kernel: int = 1):
        super().__init__()
        self.modalities = ordered(dims)
        if len(self.modalities) < 2:
            raise ValueError("MulT needs at least two modalities")
        if kernel % 2 == 0:
            raise ValueError(f"MulT's Conv1d kernel must be odd (length-preserving), got {kernel}")
        mem_layers = max(n_layers, 3) if mem_layers is None else mem_layers
        self.proj = nn.ModuleDict({m: nn.Conv1d(dims[m], d, kernel, padding=kernel // 2, bias=False)
                                   for m in self.modalities})
        self.cross = nn.ModuleDict({f"{m}<-{s}": CrossTransformer(d, n_heads, n_layers, dropout)
                                    for m in self.modalities for s in self.modalities if s != m})
        w = (len(self.modalities) - 1) * d  # one target modality's concatenated cross-modal width
        self.mem = nn.ModuleDict({m: CrossTransformer(w, n_heads, mem_layers, dropout)
                                  for m in self.modalities})
        c = len(self.modalities) * w  # MulT's combined_dim (6d for three modalities)
        self.proj1, self.proj2, self.out = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, 1)
        self.dropout, self.pointwise = dropout, kernel == 1

    def forward(self, batch: Batch) -> ModelOutput:
        xs = {}
        for m in self.modalities:
            keep = batch.mask[m].unsqueeze(-1)  # (B, T_m, 1)
            x = batch.x[m] if self.pointwise else batch.x[m] * keep  # (B, T_m, d_m); padded steps zeroed
            x = self.proj[m](x.transpose(1, 2)).transpose(1, 2)  # (B, T_m, d)
            xs[m] = x * keep if self.pointwise else x  # kernel 1, no bias: same zeros, d/d_m of the work
        feats = {}
        for m in self.modalities:
            mask = batch.mask[m]  # (B, T_m)
            h = torch.cat([self.cross[f"{m}<-{s}"](xs[m], mask, xs[s], batch.mask[s])
                           for s in self.modalities if s != m], -1)  # (B, T_m, w)
            h = self.mem[m](h, mask)  # (B, T_m, w)
            has_target = batch.target is not None and batch.target.shape == mask.shape
            feats[m] = pool(h, mask, batch.target) if has_target else last_step(h, mask)  # (B, w)
        z = torch.cat([feats[m] for m in self.modalities], -1)  # (B, c)
        hidden = self.proj2(dropout(F.relu(self.proj1(z)), self.dropout, self.training)) + z  # (B, c)
        return ModelOutput(pred=self.out(hidden).squeeze(-1), features=feats)


def mult_from_hparams(dims: dict[str, int], d: int, n_heads: int, n_layers: int, dropout: float,
                      mem_layers: int | None = None, kernel: int = 1) -> MulT:
    """MulT from plain numbers (MMSA's ``dst_feature_dim``, ``nheads``, ``nlevels``, one dropout)."""
    return MulT(dims, d=d, n_heads=n_heads, n_layers=n_layers, dropout=dropout,
                mem_layers=mem_layers, kernel=kernel)
