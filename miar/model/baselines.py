"""Baselines for the MIAR study, all returning :class:`ModelOutput` with ``embeddings={}`` (no
contrastive term) and per-modality pooled ``features``. :mod:`miar.model.build` reads the config and
injects the per-modality encoders (:class:`~miar.model.encoders.ModalityEncoder`); the modules take
modules and plain numbers.

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
from torch import nn

from miar.data.batch import Batch, joint_mask, ordered, shared_axis
from miar.model.encoders import ContextEncoder, encode_all
from miar.model.layers import Dropout, masked_mean, mlp_head, packed_lstm, pool
from miar.model.output import ModelOutput


class Unimodal(nn.Module):
    """One modality: its encoder and a head (``text_only`` is this model on text)."""

    def __init__(self, encoders: nn.ModuleDict, head: nn.Module):
        super().__init__()
        if len(encoders) != 1:
            raise ValueError(f"a unimodal model takes one encoder, got {list(encoders)}")
        self.encoders, self.head = encoders, head

    def forward(self, batch: Batch) -> ModelOutput:
        _, pooled = encode_all(self.encoders, batch)  # m -> (B, d)
        (z,) = pooled.values()
        return ModelOutput(pred=self.head(z).squeeze(-1), features=pooled)


class EarlyFusion(nn.Module):
    """Early fusion: projected modalities concatenated, one contextual encoder, one head.

    ``encoders`` project (no contextual encoder of their own). Shared time axis: per-step concatenation
    (B, T, M*d) -> ``fuse`` to d -> ``context`` -> pool at the target. Unaligned: per-modality pooled
    projections concatenated (B, M*d) -> the same ``fuse`` -> head.
    """

    def __init__(self, encoders: nn.ModuleDict, fuse: nn.Module, context: ContextEncoder, head: nn.Module):
        super().__init__()
        self.encoders, self.fuse, self.context, self.head = encoders, fuse, context, head
        self.modalities = tuple(encoders)

    def forward(self, batch: Batch) -> ModelOutput:
        hs, feats = encode_all(self.encoders, batch)  # m -> (B, T_m, d), m -> (B, d)
        if shared_axis(batch, self.modalities):
            mask = joint_mask(batch, self.modalities)  # (B, T)
            h = self.fuse(torch.cat([hs[m] for m in self.modalities], -1))  # (B, T, d)
            z = pool(self.context(h * mask.unsqueeze(-1), mask, batch.target), mask, batch.target)  # (B, d)
        else:
            z = self.fuse(torch.cat([feats[m] for m in self.modalities], -1))  # (B, d)
        return ModelOutput(pred=self.head(z).squeeze(-1), features=feats)


class LateFusion(nn.Module):
    """Late fusion: one encoder and one head per modality; the predictions are averaged with learned
    softmax weights (initially uniform)."""

    def __init__(self, encoders: nn.ModuleDict, heads: nn.ModuleDict):
        super().__init__()
        self.encoders, self.heads = encoders, heads
        self.weight = nn.Parameter(torch.zeros(len(encoders)))  # (M,) softmax logits

    def forward(self, batch: Batch) -> ModelOutput:
        _, feats = encode_all(self.encoders, batch)  # m -> (B, d)
        preds = [self.heads[m](z).squeeze(-1) for m, z in feats.items()]  # M x (B,)
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


__all__ = ["BCLSTM", "EarlyFusion", "LateFusion", "Unimodal", "mlp_head", "ordered", "packed_lstm", "shared_axis"]
