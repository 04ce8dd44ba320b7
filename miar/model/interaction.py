"""Feature interaction: how the feature tokens are formed (MIAR's abstract leaves this open).

Every scheme takes the encoded sequences ``xs`` (modality -> (B, T_m, d)), their masks and the
pooled per-modality features ``pooled`` (modality -> (B, d)), and returns (names, tokens (B, K, d));
``n_tokens`` is its K.

- ``query`` (default, :class:`QueryTokens`): a learnable query per modality, seeded with that modality's pooled
  feature, cross-attends to the *other* modalities' sequences; with ``fused`` a further query attends to all.
- ``directed`` (:class:`DirectedTokens`): directed cross-modal tokens text<-m and m<-text (MulT-like), each pooled
  to one token.
- ``joint`` (:class:`JointTokens`): one joint transformer over [queries, X_text, X_audio, X_vision] whose attention
  mask gives ``query``'s visibility (a query sees the other modalities; sequence steps see their own modality).

(Their first names, ``h1``, ``h2``, ``h3``, are still read from configs, with a deprecation warning: see
:func:`miar.config.upgrade`.)
- ``pool`` (the no-interaction ablation): the pooled features themselves (+ their mean as fused).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from miar.model.layers import Block, key_mask, masked_mean

FUSED = "fused"


class PoolTokens(nn.Module):
    """No interaction: tokens are the pooled per-modality features (ablation)."""

    def __init__(self, modalities: tuple[str, ...], fused: bool):
        super().__init__()
        self.modalities, self.fused = modalities, fused
        self.n_tokens = len(modalities) + fused

    def forward(self, xs, masks, pooled):
        toks = [pooled[m] for m in self.modalities]  # K x (B, d)
        names = list(self.modalities)
        if self.fused:
            toks.append(torch.stack(toks, 1).mean(1))
            names.append(FUSED)
        return tuple(names), torch.stack(toks, 1)  # (B, K, d)


class QueryTokens(nn.Module):
    """query: per-modality queries cross-attend to the other modalities (and a fused query to all)."""

    def __init__(self, modalities, fused: bool, d: int, n_heads: int, n_layers: int, dropout: float):
        super().__init__()
        self.modalities, self.fused = modalities, fused
        names = self.names = tuple(modalities) + ((FUSED,) if fused else ())
        self.n_tokens = len(names)
        self.query = nn.ParameterDict({n: nn.Parameter(0.02 * torch.randn(d)) for n in names})
        self.blocks = nn.ModuleDict(
            {n: nn.ModuleList(Block(d, n_heads, dropout) for _ in range(n_layers)) for n in names})

    def _sources(self, name: str) -> tuple[str, ...]:
        return self.modalities if name == FUSED else tuple(m for m in self.modalities if m != name)

    def forward(self, xs, masks, pooled):
        names, toks = [], []
        mean_pool = torch.stack([pooled[m] for m in self.modalities], 1).mean(1)  # (B, d)
        for name in self.names:  # fixed order (ParameterDict sorts its keys)
            src = self._sources(name)
            kv = torch.cat([xs[m] for m in src], 1)  # (B, sum T, d)
            allow = key_mask(torch.cat([masks[m] for m in src], 1))  # (B, 1, 1, sum T)
            seed = mean_pool if name == FUSED else pooled[name]
            q = (seed + self.query[name]).unsqueeze(1)  # (B, 1, d)
            for blk in self.blocks[name]:
                q = blk(q, kv, allow)
            names.append(name)
            toks.append(q.squeeze(1))
        return tuple(names), torch.stack(toks, 1)  # (B, K, d)


class DirectedTokens(nn.Module):
    """directed: text<-m and m<-text cross-modal sequences, each pooled over its query's steps."""

    def __init__(self, modalities, fused: bool, d: int, n_heads: int, n_layers: int, dropout: float):
        super().__init__()
        if "text" not in modalities or len(modalities) < 2:
            raise ValueError("token_scheme directed is text-centred: it needs text and another modality")
        others = [m for m in modalities if m != "text"]
        self.pairs = [("text", m) for m in others] + [(m, "text") for m in others]
        if not fused:  # 3 tokens: drop the last directed pair
            self.pairs = self.pairs[:3] if len(self.pairs) > 3 else self.pairs
        self.n_tokens = len(self.pairs)
        self.blocks = nn.ModuleDict({f"{a}<-{b}": nn.ModuleList(Block(d, n_heads, dropout)
                                                                 for _ in range(n_layers))
                                     for a, b in self.pairs})

    def forward(self, xs, masks, pooled):
        names, toks = [], []
        for a, b in self.pairs:
            h = xs[a]
            for blk in self.blocks[f"{a}<-{b}"]:
                h = blk(h, xs[b], key_mask(masks[b]))  # (B, T_a, d)
            names.append(f"{a}<-{b}")
            toks.append(masked_mean(h, masks[a]))
        return tuple(names), torch.stack(toks, 1)  # (B, K, d)


class JointTokens(nn.Module):
    """joint: one joint transformer over queries and all sequences, masked to the query scheme's visibility."""

    def __init__(self, modalities, fused: bool, d: int, n_heads: int, n_layers: int, dropout: float):
        super().__init__()
        self.modalities, self.fused = modalities, fused
        self.names = tuple(modalities) + ((FUSED,) if fused else ())
        self.n_tokens = len(self.names)
        self.query = nn.Parameter(0.02 * torch.randn(len(self.names), d))
        self.blocks = nn.ModuleList(Block(d, n_heads, dropout) for _ in range(n_layers))

    def _allow(self, masks) -> Tensor:
        """(B, 1, L, L) visibility, L = K + sum T: query i sees itself and the steps of modalities
        other than i (the fused query, index len(modalities), sees all); a step sees its own modality."""
        k = len(self.names)
        ref = masks[self.modalities[0]]
        owner = torch.cat([torch.full((masks[m].shape[1],), i, device=ref.device)
                           for i, m in enumerate(self.modalities)])  # (S,)
        q_rows = torch.cat([torch.eye(k, dtype=torch.bool, device=ref.device),
                            owner[None, :] != torch.arange(k, device=ref.device)[:, None]], 1)  # (K, L)
        s_rows = torch.cat([torch.zeros(len(owner), k, dtype=torch.bool, device=ref.device),
                            owner[None, :] == owner[:, None]], 1)  # (S, L)
        real = torch.cat([torch.ones_like(ref[:, :1]).expand(-1, k)]
                         + [masks[m] for m in self.modalities], 1)  # (B, L)
        return torch.cat([q_rows, s_rows], 0)[None, None] & real[:, None, None, :]  # (B, 1, L, L)

    def forward(self, xs, masks, pooled):
        seeds = [pooled[m] for m in self.modalities]
        if self.fused:
            seeds.append(torch.stack(seeds, 0).mean(0))
        q = torch.stack(seeds, 1) + self.query  # (B, K, d)
        h = torch.cat([q] + [xs[m] for m in self.modalities], 1)  # (B, L, d)
        allow = self._allow(masks)
        for blk in self.blocks:
            h = blk(h, allow=allow)
        return self.names, h[:, :len(self.names)]  # (B, K, d)


def build_interaction(scheme: str, interaction: bool, modalities, fused: bool, d: int,
                      n_heads: int, n_layers: int, dropout: float) -> nn.Module:
    if len(modalities) < 2:
        raise ValueError("MIAR's feature interaction needs at least two modalities")
    if not interaction:
        return PoolTokens(modalities, fused)
    cls = {"query": QueryTokens, "directed": DirectedTokens, "joint": JointTokens}.get(scheme)
    if cls is None:
        raise ValueError(f"unknown token_scheme {scheme!r}")
    return cls(modalities, fused, d, n_heads, n_layers, dropout)
