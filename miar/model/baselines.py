"""Baselines for the MIAR study, all returning :class:`ModelOutput` with ``embeddings={}`` (no
contrastive term) and per-modality pooled ``features``. ``build_baseline`` reads the config; the
modules take plain numbers.

- ``text_only``: projection and normalization of text, the contextual encoder, pooling, MLP head.
- ``early_fusion``: per-modality projections concatenated (per step when the modalities share a time
  axis, else after pooling), then one encoder and the head.
- ``late_fusion``: one unimodal model per modality; predictions mixed with learned softmax weights.
- ``bclstm``: the hierarchical contextual LSTM of Poria et al., "Context-Dependent Sentiment Analysis
  in User-Generated Videos", ACL 2017.
- ``mult``: MulT (Tsai et al., ACL 2019), :mod:`miar.model.mult`.
- ``misa``: MISA (Hazarika et al., ACM MM 2020), :mod:`miar.model.misa`.

Step-wise fusion (concatenating modalities per step) needs a shared time axis: context windows
(``batch.target`` set) and aligned batches (equal lengths, identical masks). Otherwise each modality
is pooled first. Padded steps never reach a prediction: attention and pooling are masked and LSTMs
run packed over the real steps only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from miar.config import Config, ConfigError
from miar.data.batch import MODALITIES, Batch
from miar.model.encoders import ContextEncoder, Projection
from miar.model.layers import Dropout, masked_mean, packed_lstm, pool
from miar.model.miar import ModelOutput


def ordered(dims: dict[str, int]) -> tuple[str, ...]:
    """Modalities of ``dims`` in the fixed order (text, audio, vision, then any others)."""
    return tuple(m for m in MODALITIES if m in dims) + tuple(m for m in dims if m not in MODALITIES)


def mlp_head(d_in: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), Dropout(dropout), nn.Linear(hidden, 1))


def shared_axis(batch: Batch, modalities: tuple[str, ...]) -> bool:
    """True when the modalities share one time axis: context windows, or aligned batches."""
    lengths = {batch.mask[m].shape[1] for m in modalities}
    if batch.target is not None:
        if len(lengths) != 1:
            raise ValueError(f"context windows need one time axis for all modalities, got {lengths}")
        return True
    first = batch.mask[modalities[0]]
    return len(lengths) == 1 and all(torch.equal(batch.mask[m], first) for m in modalities[1:])


def joint_mask(batch: Batch, modalities: tuple[str, ...]) -> Tensor:
    """Steps where any modality is real: (B, T) bool."""
    return torch.stack([batch.mask[m] for m in modalities], 0).any(0)


class Unimodal(nn.Module):
    """One modality: projection and normalization, the contextual encoder, pooling, MLP head
    (``text_only`` is this model on text)."""

    def __init__(self, dims: dict[str, int], modality: str = "text", *, d: int = 64, n_heads: int = 4,
                 n_layers: int = 1, encoder: str = "transformer", norm: str = "layernorm",
                 dropout: float = 0.1, head_hidden: int = 64, max_len: int = 512):
        super().__init__()
        self.modality = modality
        self.proj = nn.ModuleDict({modality: Projection(dims[modality], d, norm, dropout)})
        self.enc = ContextEncoder(d, encoder, n_layers, n_heads, dropout, max_len)
        self.head = mlp_head(d, head_hidden, dropout)

    def forward(self, batch: Batch) -> ModelOutput:
        m, mask = self.modality, batch.mask[self.modality]  # mask (B, T)
        h = self.proj[m](batch.x[m], mask) * mask.unsqueeze(-1)  # (B, T, d)
        z = pool(self.enc(h, mask, batch.target), mask, batch.target)  # (B, d)
        return ModelOutput(pred=self.head(z).squeeze(-1), features={m: z})


class EarlyFusion(nn.Module):
    """Early fusion: projected modalities concatenated, one contextual encoder, one head.

    Shared time axis: per-step concatenation (B, T, M*d) -> linear to d -> encoder -> pool at the
    target. Unaligned: per-modality pooled projections concatenated (B, M*d) -> the same linear -> head.
    """

    def __init__(self, dims: dict[str, int], *, d: int = 64, n_heads: int = 4, n_layers: int = 1,
                 encoder: str = "transformer", norm: str = "layernorm", dropout: float = 0.1,
                 head_hidden: int = 64, max_len: int = 512):
        super().__init__()
        self.modalities = ordered(dims)
        self.proj = nn.ModuleDict({m: Projection(dims[m], d, norm, dropout) for m in self.modalities})
        self.fuse = nn.Linear(len(self.modalities) * d, d)
        self.enc = ContextEncoder(d, encoder, n_layers, n_heads, dropout, max_len)
        self.head = mlp_head(d, head_hidden, dropout)

    def forward(self, batch: Batch) -> ModelOutput:
        hs = {m: self.proj[m](batch.x[m], batch.mask[m]) * batch.mask[m].unsqueeze(-1)
              for m in self.modalities}  # m -> (B, T_m, d)
        feats = {m: pool(hs[m], batch.mask[m], batch.target) for m in self.modalities}  # m -> (B, d)
        if shared_axis(batch, self.modalities):
            mask = joint_mask(batch, self.modalities)  # (B, T)
            h = self.fuse(torch.cat([hs[m] for m in self.modalities], -1))  # (B, T, d)
            z = pool(self.enc(h * mask.unsqueeze(-1), mask, batch.target), mask, batch.target)  # (B, d)
        else:
            z = self.fuse(torch.cat([feats[m] for m in self.modalities], -1))  # (B, d)
        return ModelOutput(pred=self.head(z).squeeze(-1), features=feats)


class LateFusion(nn.Module):
    """Late fusion: one unimodal model per modality (projection, encoder, pool, head); the
    predictions are averaged with learned softmax weights (initially uniform)."""

    def __init__(self, dims: dict[str, int], *, d: int = 64, n_heads: int = 4, n_layers: int = 1,
                 encoder: str = "transformer", norm: str = "layernorm", dropout: float = 0.1,
                 head_hidden: int = 64, max_len: int = 512):
        super().__init__()
        self.modalities = ordered(dims)
        self.proj = nn.ModuleDict({m: Projection(dims[m], d, norm, dropout) for m in self.modalities})
        self.enc = nn.ModuleDict({m: ContextEncoder(d, encoder, n_layers, n_heads, dropout, max_len)
                                  for m in self.modalities})
        self.head = nn.ModuleDict({m: mlp_head(d, head_hidden, dropout) for m in self.modalities})
        self.weight = nn.Parameter(torch.zeros(len(self.modalities)))  # (M,) softmax logits

    def forward(self, batch: Batch) -> ModelOutput:
        feats, preds = {}, []
        for m in self.modalities:
            mask = batch.mask[m]  # (B, T_m)
            h = self.proj[m](batch.x[m], mask) * mask.unsqueeze(-1)  # (B, T_m, d)
            feats[m] = pool(self.enc[m](h, mask, batch.target), mask, batch.target)  # (B, d)
            preds.append(self.head[m](feats[m]).squeeze(-1))  # (B,)
        pred = torch.stack(preds, 1) @ torch.softmax(self.weight, 0).to(preds[0].dtype)  # (B,)
        return ModelOutput(pred=pred, features=feats)


class BCLSTM(nn.Module):
    """Hierarchical bc-LSTM (Poria et al., ACL 2017).

    Level 1, per modality: a bidirectional LSTM over the context (the utterances of the window) and a
    dense tanh layer -> contextual unimodal features. Level 2: their per-step concatenation, a second
    bidirectional LSTM over the context, the head at the target utterance (masked mean without one).
    Without a shared time axis the level-1 features are pooled first and level 2 sees one step.
    """

    def __init__(self, dims: dict[str, int], *, d: int = 64, dropout: float = 0.1, head_hidden: int = 64):
        super().__init__()
        if d % 2:
            raise ValueError(f"bclstm needs an even d_model (two LSTM directions), got {d}")
        self.modalities = ordered(dims)
        self.lstm = nn.ModuleDict({m: nn.LSTM(dims[m], d // 2, batch_first=True, bidirectional=True)
                                   for m in self.modalities})
        self.dense = nn.ModuleDict({m: nn.Sequential(Dropout(dropout), nn.Linear(d, d), nn.Tanh())
                                    for m in self.modalities})
        self.fusion = nn.LSTM(len(self.modalities) * d, d // 2, batch_first=True, bidirectional=True)
        self.drop = Dropout(dropout)
        self.head = mlp_head(d, head_hidden, dropout)

    def forward(self, batch: Batch) -> ModelOutput:
        ctx = {}
        for m in self.modalities:
            mask = batch.mask[m]  # (B, T_m)
            h = packed_lstm(self.lstm[m], batch.x[m], mask)  # (B, T_m, d)
            ctx[m] = self.dense[m](h) * mask.unsqueeze(-1)  # (B, T_m, d)
        feats = {m: pool(ctx[m], batch.mask[m], batch.target) for m in self.modalities}  # m -> (B, d)
        target = batch.target
        if shared_axis(batch, self.modalities):
            mask = joint_mask(batch, self.modalities)  # (B, T)
            h = torch.cat([ctx[m] for m in self.modalities], -1)  # (B, T, M*d)
        else:
            h = torch.cat([feats[m] for m in self.modalities], -1).unsqueeze(1)  # (B, 1, M*d)
            mask, target = torch.ones_like(h[:, :, 0], dtype=torch.bool), None  # (B, 1)
        h = self.drop(packed_lstm(self.fusion, h, mask))  # (B, T, d)
        z = pool(h, mask, target) if target is not None else masked_mean(h, mask)  # (B, d)
        return ModelOutput(pred=self.head(z).squeeze(-1), features=feats)


def build_baseline(cfg: Config, dims: dict[str, int]) -> nn.Module:
    """The baseline named by ``cfg.model.name`` for input feature ``dims`` (modality -> width)."""
    m = cfg.model
    if not dims:
        raise ConfigError(f"model {m.name} needs at least one modality (data.modalities)")
    common = dict(d=m.d_model, n_heads=m.n_heads, n_layers=m.n_layers, encoder=m.encoder,
                  norm=m.norm, dropout=m.dropout, head_hidden=m.head_hidden, max_len=m.max_len)
    if m.name == "text_only":
        if "text" not in dims:
            raise ConfigError("model text_only needs the text modality (data.modalities)")
        return Unimodal(dims, "text", **common)
    if m.name == "early_fusion":
        return EarlyFusion(dims, **common)
    if m.name == "late_fusion":
        return LateFusion(dims, **common)
    if m.name == "bclstm":
        return BCLSTM(dims, d=m.d_model, dropout=m.dropout, head_hidden=m.head_hidden)
    if m.name in ("mult", "misa") and len(dims) < 2:
        raise ConfigError(f"model {m.name} needs at least two modalities (data.modalities)")
    from miar.model.misa import MISA  # noqa: PLC0415 (they import this module's helpers)
    from miar.model.mult import mult_from_hparams  # noqa: PLC0415
    if m.name == "mult":
        return mult_from_hparams(dims, m.d_model, m.n_heads, m.n_layers, m.dropout)
    if m.name == "misa":
        return MISA(dims, **common, sim_weight=m.misa_sim_weight, diff_weight=m.misa_diff_weight,
                    recon_weight=m.misa_recon_weight)
    raise ConfigError(f"model.name: {m.name!r} is not a baseline")


__all__ = ["BCLSTM", "EarlyFusion", "LateFusion", "Unimodal", "build_baseline", "mlp_head", "ordered",
           "packed_lstm", "shared_axis"]
