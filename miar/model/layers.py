"""Building blocks shared by MIAR and the baselines: attention via SDPA, masked pooling, norms, dropout.

Dropout on CPU draws its keep mask from 16-bit slices of 64-bit random words (one generator call
per four elements): ``bernoulli_``, which ``F.dropout`` uses, draws one number per element and made
dropout about half of a CPU training step (``miar bench``). Training-time attention with dropout on
CPU runs the softmax explicitly with that dropout (with dropout, SDPA on CPU falls back to its
unfused math path anyway; without dropout, and on GPU, SDPA's kernels are used).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

_LEVELS = 65536  # the keep mask compares 16-bit uniform integers with a threshold


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout: zero each entry with probability p, scale the rest by 1 / (1 - p).

    On CPU, p is rounded to a multiple of 1/65536 (0.1 -> 0.100006) and the scale is exact for it.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0:
        return F.dropout(x, p, training)
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, None)  # full 64-bit range
    u = words.view(torch.int16)[:n].view(x.shape)  # uniform on [-32768, 32767]
    drop = round(p * _LEVELS)  # P(keep) = 1 - drop / 65536, kept entries scaled by its inverse
    keep = torch.where(u >= drop - _LEVELS // 2, _LEVELS / (_LEVELS - drop), 0.0).to(x.dtype)
    return x * keep


class Dropout(nn.Module):
    """``nn.Dropout`` with :func:`dropout`'s CPU keep masks (same state dict: none)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


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
        if p > 0.0 and qh.device.type == "cpu":
            y = explicit_attention(qh, k, v, allow, p)  # (B, H, Tq, dh)
        else:
            y = F.scaled_dot_product_attention(qh, k, v, attn_mask=allow, dropout_p=p)  # (B, H, Tq, dh)
        return self.out(y.transpose(1, 2).reshape(b, tq, d))


def explicit_attention(q: Tensor, k: Tensor, v: Tensor, allow: Tensor | None, p: float) -> Tensor:
    """SDPA's math with :func:`dropout` on the weights: q (B, H, Tq, dh), k, v (B, H, Tk, dh) ->
    (B, H, Tq, dh). As SDPA, a query row with no allowed key gives 0."""
    att = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (B, H, Tq, Tk)
    if allow is not None:  # in place: the matmul's backward does not need its output
        att = att.masked_fill_(~allow, torch.finfo(att.dtype).min)
    att = torch.softmax(att, -1)
    if allow is not None:
        row_ok = allow.any(-1, keepdim=True)  # (B, 1 or H, Tq or 1, 1)
        if not bool(row_ok.all()):
            att = att * row_ok
    return dropout(att, p) @ v  # (B, H, Tq, dh)


def key_mask(mask: Tensor) -> Tensor:
    """(B, Tk) key padding mask -> (B, 1, 1, Tk) SDPA boolean mask."""
    return mask[:, None, None, :]


class Block(nn.Module):
    """Pre-LN transformer block: (cross-)attention then a feed-forward layer, both residual."""

    def __init__(self, d: int, n_heads: int, dropout: float, ff_mult: int = 2):
        super().__init__()
        self.ln_q, self.ln_kv, self.ln_ff = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d, n_heads, dropout)
        self.ff = nn.Sequential(nn.Linear(d, ff_mult * d), nn.GELU(), Dropout(dropout),
                                nn.Linear(ff_mult * d, d))
        self.drop = Dropout(dropout)

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


def mlp_head(d_in: int, hidden: int, dropout: float) -> nn.Sequential:
    """The regression head: Linear -> GELU -> dropout -> Linear to one output."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), Dropout(dropout), nn.Linear(hidden, 1))
