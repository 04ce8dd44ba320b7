"""MIAR: per-modality projection and normalization -> contextual encoders -> feature interaction
(feature tokens) -> optional gate over the tokens -> regression head.

Everything the abstract leaves open is a constructor argument that ``build_model`` reads from the
config (see ``miar/config.py`` for the ``[inferred]`` choices).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import torch
from torch import Tensor, nn

from miar.data.batch import Batch
from miar.model.encoders import ContextEncoder, Projection
from miar.model.interaction import FUSED, build_interaction
from miar.model.layers import Dropout, pool


@dataclass
class ModelOutput:
    """What every model returns. ``embeddings`` feed the contrastive loss; ``aux`` holds named
    extra loss terms (e.g. MISA's); ``features`` are pooled per-modality features before interaction."""

    pred: Tensor  # (B,)
    tokens: Tensor | None = None  # (B, K, d)
    token_names: tuple[str, ...] = ()
    embeddings: dict[str, Tensor] = field(default_factory=dict)  # token name -> (B, p)
    features: dict[str, Tensor] = field(default_factory=dict)  # modality -> (B, d)
    gate: Tensor | None = None  # (B, K)
    aux: dict[str, Tensor] = field(default_factory=dict)


class TokenGate(nn.Module):
    """A learned, input-dependent softmax weight per token (unequal modality contributions)."""

    def __init__(self, d: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1))

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        w = torch.softmax(self.score(tokens).squeeze(-1), dim=-1)  # (B, K)
        return tokens * w.unsqueeze(-1) * tokens.shape[1], w  # mean weight 1 keeps the scale


class MIAR(nn.Module):
    def __init__(self, dims: dict[str, int], *, d: int = 64, n_heads: int = 4, n_layers: int = 1,
                 encoder: str = "transformer", norm: str = "layernorm", dropout: float = 0.1,
                 interaction: bool = True, token_scheme: str = "h1", n_tokens: int = 4,
                 gate: bool = False, head_hidden: int = 64, proj_dim: int = 32, max_len: int = 512):
        super().__init__()
        self.modalities = tuple(dims)
        self.proj = nn.ModuleDict({m: Projection(dims[m], d, norm, dropout) for m in self.modalities})
        self.enc = nn.ModuleDict({m: ContextEncoder(d, encoder, n_layers, n_heads, dropout, max_len)
                                  for m in self.modalities})
        self.interact = build_interaction(token_scheme, interaction, self.modalities, n_tokens == 4,
                                          d, n_heads, n_layers, dropout)
        k = len(self.modalities) + (1 if n_tokens == 4 else 0)
        if token_scheme == "h2" and interaction:
            k = len(self.interact.pairs)
        self.gate = TokenGate(d) if gate else None
        self.head = nn.Sequential(nn.Linear(k * d, head_hidden), nn.GELU(), Dropout(dropout),
                                  nn.Linear(head_hidden, 1))
        self.contrast = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, proj_dim))

    def encode(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Projected, normalized and contextually encoded sequences, and their pooled features."""
        xs, pooled = {}, {}
        for m in self.modalities:
            mask = batch.mask[m]  # (B, T)
            h = self.proj[m](batch.x[m], mask) * mask.unsqueeze(-1)  # (B, T, d)
            xs[m] = self.enc[m](h, mask, batch.target)  # (B, T, d)
            pooled[m] = pool(xs[m], mask, batch.target)  # (B, d)
        return xs, pooled

    def forward(self, batch: Batch) -> ModelOutput:
        xs, pooled = self.encode(batch)
        names, tokens = self.interact(xs, batch.mask, pooled)  # (B, K, d)
        weights = None
        if self.gate is not None:
            tokens, weights = self.gate(tokens)
        pred = self.head(tokens.flatten(1)).squeeze(-1)  # (B,)
        emb = self.contrast(tokens)  # (B, K, p)
        return ModelOutput(pred=pred, tokens=tokens, token_names=names,
                           embeddings={n: emb[:, i] for i, n in enumerate(names)},
                           features=pooled, gate=weights)


def contrastive_pairs(token_names: tuple[str, ...], kind: str) -> list[tuple[str, str]]:
    """``modal``: pairs of per-modality tokens (h2: the two directions of a modality pair and the
    two text-query tokens); ``all``: every pair of tokens, the fused one included."""
    if kind == "all":
        return list(combinations(token_names, 2))
    if any("<-" in n for n in token_names):  # h2
        pairs = [(a, b) for a, b in combinations(token_names, 2)
                 if a.split("<-")[::-1] == b.split("<-") or (a.startswith("text<-") and b.startswith("text<-"))]
        return pairs
    return list(combinations([n for n in token_names if n != FUSED], 2))
