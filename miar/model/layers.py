"""Building blocks shared by MIAR and the baselines: attention via SDPA, masked pooling, norms."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over real steps: x (B, T, d), mask (B, T) bool -> (B, d)."""
    w = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def pool(x: Tensor, mask: Tensor, target: Tensor | None) -> Tensor:
    """The target step when one is marked (context windows), else the masked mean: -> (B, d)."""
    if target is not None and target.shape == mask.shape:
        return (x * target.unsqueeze(-1).to(x.dtype)).sum(1)  # exactly one True per row
    return masked_mean(x, mask)


def packed_lstm(lstm: nn.LSTM, x: Tensor, mask: Tensor) -> Tensor:
    """Run ``lstm`` over each row's real steps only (packed, wherever the padding is): -> (B, T, d).

    Real steps are moved to the front in their order, packed, and scattered back; padded steps are 0.
    """
    b, t, _ = x.shape
    order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices  # (B, T) real steps first
    xs = torch.gather(x, 1, order.unsqueeze(-1).expand_as(x))  # (B, T, d_in)
    lengths = mask.sum(1).clamp_min(1).cpu()  # (B,)
    packed = pack_padded_sequence(xs, lengths, batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=t)  # (B, T, d)
    out = torch.zeros_like(out).scatter(1, order.unsqueeze(-1).expand_as(out), out)  # (B, T, d)
    return out * mask.unsqueeze(-1).to(out.dtype)


class Attention(nn.Module):
    """Multi-head attention through ``scaled_dot_product_attention``.

    ``allow``: bool, broadcastable to (B, H, Tq, Tk); True = may attend.
    """

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d_model {d} is not divisible by n_heads {n_heads}")
        self.h, self.dropout = n_heads, dropout
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)

    def forward(self, q: Tensor, kv: Tensor, allow: Tensor | None) -> Tensor:
        b, tq, d = q.shape
        tk = kv.shape[1]
        qh = self.q(q).view(b, tq, self.h, d // self.h).transpose(1, 2)  # (B, H, Tq, dh)
        k, v = self.kv(kv).view(b, tk, 2, self.h, d // self.h).permute(2, 0, 3, 1, 4)  # 2 x (B, H, Tk, dh)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(qh, k, v, attn_mask=allow, dropout_p=p)  # (B, H, Tq, dh)
        return self.out(y.transpose(1, 2).reshape(b, tq, d))


def key_mask(mask: Tensor) -> Tensor:
    """(B, Tk) key padding mask -> (B, 1, 1, Tk) SDPA boolean mask."""
    return mask[:, None, None, :]


class Block(nn.Module):
    """Pre-LN transformer block: (cross-)attention then a feed-forward layer, both residual."""

    def __init__(self, d: int, n_heads: int, dropout: float, ff_mult: int = 2):
        super().__init__()
        self.ln_q, self.ln_kv, self.ln_ff = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d, n_heads, dropout)
        self.ff = nn.Sequential(nn.Linear(d, ff_mult * d), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(ff_mult * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, kv: Tensor | None = None, allow: Tensor | None = None) -> Tensor:
        h = self.ln_q(x)
        src = h if kv is None else self.ln_kv(kv)
        x = x + self.drop(self.attn(h, src, allow))  # (B, Tq, d)
        return x + self.drop(self.ff(self.ln_ff(x)))


class MaskedNorm(nn.Module):
    """Normalization after projection: ``layernorm``, ``batchnorm`` (over real steps only) or ``none``."""

    def __init__(self, d: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "layernorm":
            self.norm = nn.LayerNorm(d)
        elif kind == "batchnorm":
            self.norm = nn.BatchNorm1d(d)
        elif kind == "none":
            self.norm = nn.Identity()
        else:
            raise ValueError(f"unknown norm {kind!r}")

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.kind != "batchnorm":
            return self.norm(x)
        out = torch.zeros_like(x)
        out[mask] = self.norm(x[mask])  # (N_real, d)
        return out
