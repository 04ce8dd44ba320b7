"""MISA: Hazarika et al., "MISA: Modality-Invariant and -Specific Representations for Multimodal
Sentiment Analysis", ACM MM 2020.

Per modality an utterance representation (projection, contextual encoder, pooling, then MISA's
Linear-ReLU-LayerNorm). A shared encoder (Linear + sigmoid) maps each to a modality-invariant vector,
a private encoder per modality (Linear + sigmoid) to a modality-specific one; a decoder reconstructs
the utterance representation from their sum. Fusion: the 2M vectors (private, then shared) go through
a one-layer transformer, are concatenated and regressed by MISA's head (Linear 2Md->Md, dropout, ReLU,
Linear). Auxiliary losses, weighted and returned in ``ModelOutput.aux``:

- ``misa_sim``: CMD (order 5) between the invariant vectors of each modality pair, averaged;
- ``misa_diff``: soft orthogonality between shared and private of each modality and between private
  pairs, summed; as MISA's code, the *mean* squared entry of A^T B (the paper writes ||A^T B||_F^2);
- ``misa_recon``: MSE between reconstruction and utterance representation, averaged over modalities.

Differences from MISA's code: the utterance representation comes from this project's encoders (MISA:
BERT for text, two stacked LSTMs for audio/vision); one decoder is shared by all modalities (the
paper's D; the code has one per modality); the fusion transformer is a pre-LN block.
"""

from __future__ import annotations

from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miar.data.batch import Batch
from miar.model.encoders import encode_all
from miar.model.layers import Block, Dropout
from miar.model.output import ModelOutput


def cmd(x1: Tensor, x2: Tensor, n_moments: int = 5) -> Tensor:
    """Central moment discrepancy as MISA computes it: ||E x1 - E x2|| + sum_{k=2..K} ||c_k(x1) - c_k(x2)||,
    c_k the per-feature k-th central moment over the batch. x (B, d) -> scalar. (The norm has a zero
    sub-gradient at 0, so identical inputs give 0 and finite gradients.)"""
    m1, m2 = x1.mean(0), x2.mean(0)  # (d,)
    c1, c2 = x1 - m1, x2 - m2  # (B, d)
    out = torch.linalg.vector_norm(m1 - m2)
    for k in range(2, n_moments + 1):
        out = out + torch.linalg.vector_norm(c1.pow(k).mean(0) - c2.pow(k).mean(0))
    return out


def diff_loss(a: Tensor, b: Tensor) -> Tensor:
    """MISA's DiffLoss: mean squared entry of A^T B, rows mean-centred over the batch and L2-normalised
    (norms detached, as MISA). a, b (B, d) -> scalar."""
    a = a - a.mean(0, keepdim=True)  # (B, d)
    b = b - b.mean(0, keepdim=True)
    a = a / (a.norm(dim=1, keepdim=True).detach() + 1e-6)
    b = b / (b.norm(dim=1, keepdim=True).detach() + 1e-6)
    return (a.t() @ b).pow(2).mean()  # (d, d) -> scalar


class MISA(nn.Module):
    """MISA over two or more modalities; see the module docstring."""

    def __init__(self, encoders: nn.ModuleDict, *, n_heads: int = 4, dropout: float = 0.1,
                 sim_weight: float = 1.0, diff_weight: float = 0.3, recon_weight: float = 1.0, n_moments: int = 5):
        super().__init__()
        self.modalities = mods = tuple(encoders)
        if len(mods) < 2:
            raise ValueError("MISA needs at least two modalities")
        d = next(iter(encoders.values())).width
        self.weights = {"misa_sim": sim_weight, "misa_diff": diff_weight, "misa_recon": recon_weight}
        self.n_moments = n_moments
        self.encoders = encoders
        self.utt = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.LayerNorm(d))
                                  for m in mods})
        self.private = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, d), nn.Sigmoid()) for m in mods})
        self.shared = nn.Sequential(nn.Linear(d, d), nn.Sigmoid())
        self.recon = nn.Linear(d, d)
        self.fusion = Block(d, n_heads, dropout)
        k = len(mods)
        self.head = nn.Sequential(nn.Linear(2 * k * d, k * d), Dropout(dropout), nn.ReLU(),
                                  nn.Linear(k * d, 1))

    def aux_losses(self, utt, shared, private, recon) -> dict[str, Tensor]:
        """The three weighted auxiliary terms (in float32)."""
        f = {n: {m: v.float() for m, v in t.items()} for n, t in
             dict(utt=utt, shared=shared, private=private, recon=recon).items()}
        pairs = list(combinations(self.modalities, 2))
        sim = sum(cmd(f["shared"][a], f["shared"][b], self.n_moments) for a, b in pairs) / len(pairs)
        diff = sum(diff_loss(f["private"][m], f["shared"][m]) for m in self.modalities)
        diff = diff + sum(diff_loss(f["private"][a], f["private"][b]) for a, b in pairs)
        recon_l = sum(F.mse_loss(f["recon"][m], f["utt"][m]) for m in self.modalities) / len(self.modalities)
        terms = {"misa_sim": sim, "misa_diff": diff, "misa_recon": recon_l}
        return {n: self.weights[n] * v for n, v in terms.items()}

    def forward(self, batch: Batch) -> ModelOutput:
        _, pooled = encode_all(self.encoders, batch)  # m -> (B, d)
        utt, shared, private, recon = {}, {}, {}, {}
        for m in self.modalities:
            utt[m] = self.utt[m](pooled[m])  # (B, d)
            shared[m], private[m] = self.shared(utt[m]), self.private[m](utt[m])  # (B, d) each
            recon[m] = self.recon(shared[m] + private[m])  # (B, d)
        h = torch.stack([private[m] for m in self.modalities]
                        + [shared[m] for m in self.modalities], 1)  # (B, 2M, d)
        h = self.fusion(h)  # (B, 2M, d)
        pred = self.head(h.flatten(1)).squeeze(-1)  # (B,)
        return ModelOutput(pred=pred, features=utt, aux=self.aux_losses(utt, shared, private, recon))
