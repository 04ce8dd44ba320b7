"""MIAR: per-modality encoders -> feature interaction (feature tokens) -> optional gate over the tokens
-> regression head, and a contrastive projection of the tokens.

The modules are built from the config by :func:`miar.model.build.build_model` (see ``miar/config.py``
for the ``[inferred]`` choices the abstract leaves open); MIAR itself only composes them.
"""

from __future__ import annotations

from itertools import combinations

import torch
from torch import Tensor, nn

from miar.data.batch import Batch
from miar.model.encoders import encode_all
from miar.model.interaction import FUSED
from miar.model.output import ModelOutput


class TokenGate(nn.Module):
    """A learned, input-dependent softmax weight per token (unequal modality contributions)."""

    def __init__(self, d: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1))

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        w = torch.softmax(self.score(tokens).squeeze(-1), dim=-1)  # (B, K)
        return tokens * w.unsqueeze(-1) * tokens.shape[1], w  # mean weight 1 keeps the scale


class MIAR(nn.Module):
    """``encoders`` (modality -> :class:`~miar.model.encoders.ModalityEncoder`), ``interaction`` (encoded
    steps, masks, pooled features -> token names, tokens (B, K, d)), ``head`` ((B, K*d) -> (B, 1)),
    ``contrast`` ((B, K, d) -> (B, K, p)) and an optional ``gate`` (:class:`TokenGate`). ``contrast_on``:
    the contrastive embeddings come from the feature ``tokens`` or from the ``pooled`` unimodal features
    before the interaction (then keyed by modality)."""

    def __init__(self, encoders: nn.ModuleDict, interaction: nn.Module, head: nn.Module, contrast: nn.Module,
                 gate: nn.Module | None = None, contrast_on: str = "tokens"):
        super().__init__()
        if contrast_on not in ("tokens", "pooled"):
            raise ValueError(f"contrast_on: 'tokens' or 'pooled', got {contrast_on!r}")
        self.encoders, self.interact, self.head, self.contrast = encoders, interaction, head, contrast
        self.token_gate, self.contrast_on = gate, contrast_on

    def forward(self, batch: Batch) -> ModelOutput:
        seqs, pooled = encode_all(self.encoders, batch)  # m -> (B, T_m, d), m -> (B, d)
        names, tokens = self.interact(seqs, batch.mask, pooled)  # (B, K, d)
        diagnostics = {}
        if self.token_gate is not None:
            tokens, diagnostics["gate"] = self.token_gate(tokens)  # (B, K, d), (B, K)
        pred = self.head(tokens.flatten(1)).squeeze(-1)  # (B,)
        if self.contrast_on == "pooled":
            keys = tuple(pooled)
            emb = self.contrast(torch.stack([pooled[k] for k in keys], 1))  # (B, M, p)
        else:
            keys, emb = names, self.contrast(tokens)  # (B, K, p)
        return ModelOutput(pred=pred, tokens=tokens, token_names=names,
                           embeddings={n: emb[:, i] for i, n in enumerate(keys)},
                           features=pooled, diagnostics=diagnostics)


def contrastive_pairs(token_names: tuple[str, ...], kind: str) -> list[tuple[str, str]]:
    """``modal``: pairs of per-modality tokens (directed tokens: the two directions of a modality pair and the
    two text-query tokens); ``all``: every pair of tokens, the fused one included."""
    if kind == "all":
        return list(combinations(token_names, 2))
    if any("<-" in n for n in token_names):  # directed tokens
        pairs = [(a, b) for a, b in combinations(token_names, 2)
                 if a.split("<-")[::-1] == b.split("<-") or (a.startswith("text<-") and b.startswith("text<-"))]
        return pairs
    return list(combinations([n for n in token_names if n != FUSED], 2))
