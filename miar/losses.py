"""Losses for MIAR: the regression task loss and the cross-modal contrastive alignment terms.

All losses are pure functions of tensors; the only state is the optional learnable temperature
(``Temperature``, CLIP style). Every composite loss returns its named terms so the trainer can log each one.

- ``info_nce``: symmetric InfoNCE between two L2-normalised (B, p) batches, in-batch negatives.
- ``sup_con``: supervised-contrastive cross-modal variant; positives share sentiment polarity (label >= 0).
- ``total_loss`` = task (L1 or MSE) + weight * mean over modality pairs of the contrastive loss.
"""

from __future__ import annotations

import math
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TempLike = Union[float, Tensor, "Temperature"]
_PREFIX = {"infonce": "nce", "supcon": "supcon"}  # name prefix of the per-pair terms


def task_loss(pred: Tensor, y: Tensor, kind: str) -> Tensor:
    """Regression loss between predictions and gold scores, both flattened: ``"l1"`` (MAE) or ``"mse"``."""
    pred, y = pred.reshape(-1), y.reshape(-1).to(pred.dtype)  # (B,), (B,)
    if pred.numel() != y.numel():
        raise ValueError(f"task_loss: {pred.numel()} predictions but {y.numel()} targets")
    if kind == "l1":
        return F.l1_loss(pred, y)
    if kind == "mse":
        return F.mse_loss(pred, y)
    raise ValueError(f"task_loss: kind must be 'l1' or 'mse', got {kind!r}")


def _temperature(temperature: TempLike) -> Union[float, Tensor]:
    """Resolve a float, 0-d tensor or ``Temperature`` module to a usable divisor."""
    if isinstance(temperature, nn.Module):
        return temperature()
    return temperature


def _logits(a: Tensor, b: Tensor, temperature: TempLike) -> Tensor:
    """Cosine-similarity logits between two (B, p) batches, divided by the temperature."""
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"contrastive: need two (B, p) batches of equal shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)  # (B, p), (B, p)
    return a @ b.T / _temperature(temperature)  # (B, B)


def info_nce(a: Tensor, b: Tensor, temperature: TempLike) -> Tensor:
    """Symmetric InfoNCE: sample i of ``a`` must pick sample i of ``b`` among the batch, and vice versa.

    loss = (CE(logits, arange B) + CE(logits.T, arange B)) / 2 with logits = norm(a) @ norm(b).T / temperature.
    """
    logits = _logits(a, b, temperature)  # (B, B)
    target = torch.arange(logits.shape[0], device=logits.device)  # (B,)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def _supcon_direction(logits: Tensor, pos: Tensor) -> Tensor:
    """Mean over anchors (rows) with >= 1 positive of -mean_{j in P(i)} log softmax_j(logits[i])."""
    logp = F.log_softmax(logits, dim=1)  # (B, B)
    n_pos = pos.sum(dim=1)  # (B,)
    has = n_pos > 0  # (B,)
    if not bool(has.any()):
        return logits.sum() * 0.0  # zero that keeps the graph
    per_anchor = -(logp * pos).sum(dim=1)[has] / n_pos[has]  # (B_valid,)
    return per_anchor.mean()


def sup_con(a: Tensor, b: Tensor, temperature: TempLike, labels: Tensor) -> Tensor:
    """Cross-modal supervised contrastive loss, symmetric over a->b and b->a.

    For anchor i of ``a`` the positives P(i) are all j of ``b`` with the same polarity (label >= 0), including i
    itself; loss_i = -mean_{j in P(i)} log softmax_j(logits[i]). Anchors without positives are skipped.
    """
    logits = _logits(a, b, temperature)  # (B, B)
    pol = labels.reshape(-1) >= 0  # (B,)
    if pol.numel() != logits.shape[0]:
        raise ValueError(f"sup_con: {pol.numel()} labels for a batch of {logits.shape[0]}")
    pos = (pol[:, None] == pol[None, :]).to(logits.dtype)  # (B, B)
    return (_supcon_direction(logits, pos) + _supcon_direction(logits.T, pos.T)) / 2


class Temperature(nn.Module):
    """Contrastive temperature, stored CLIP style as log(1 / init); learnable (parameter) or fixed (buffer).

    ``forward()`` returns exp(-log_scale) clamped to [0.01, 1.0].
    """

    MIN, MAX = 0.01, 1.0

    def __init__(self, init: float, learnable: bool):
        super().__init__()
        if not init > 0:
            raise ValueError(f"Temperature: init must be > 0, got {init}")
        log_scale = torch.tensor(math.log(1.0 / init), dtype=torch.float32)  # ()
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)
        self.learnable = learnable

    def forward(self) -> Tensor:
        return torch.exp(-self.log_scale).clamp(self.MIN, self.MAX)  # ()

    def extra_repr(self) -> str:
        return f"learnable={self.learnable}"


def contrastive_loss(
    embeddings: dict[str, Tensor],
    pairs: list[tuple[str, str]],
    temperature: TempLike,
    kind: str,
    labels: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Mean over ``pairs`` of ``info_nce`` (kind "infonce") or ``sup_con`` (kind "supcon", needs labels).

    Returns the total and the per-pair terms named ``nce_<a>_<b>`` or ``supcon_<a>_<b>``.
    """
    if kind not in _PREFIX:
        raise ValueError(f"contrastive_loss: kind must be 'infonce' or 'supcon', got {kind!r}")
    if kind == "supcon" and labels is None:
        raise ValueError("contrastive_loss: kind 'supcon' needs labels")
    if not pairs:
        raise ValueError("contrastive_loss: no pairs given")
    temp = _temperature(temperature)  # evaluate a learnable temperature once
    terms: dict[str, Tensor] = {}
    for x, z in pairs:
        missing = [k for k in (x, z) if k not in embeddings]
        if missing:
            raise ValueError(f"contrastive_loss: no embedding for {missing}; have {sorted(embeddings)}")
        if kind == "infonce":
            term = info_nce(embeddings[x], embeddings[z], temp)
        else:
            term = sup_con(embeddings[x], embeddings[z], temp, labels)
        terms[f"{_PREFIX[kind]}_{x}_{z}"] = term
    total = torch.stack(list(terms.values())).mean()  # ()
    return total, terms


def total_loss(
    pred: Tensor,
    y: Tensor,
    embeddings: dict[str, Tensor],
    *,
    task: str,
    weight: float,
    pairs: list[tuple[str, str]],
    temperature: TempLike,
    kind: str,
) -> tuple[Tensor, dict[str, Tensor]]:
    """total = task_loss + weight * contrastive_loss, with named, detached terms for logging.

    ``kind`` is "infonce", "supcon" (positives by the polarity of ``y``) or "none". With weight 0 or kind "none"
    the contrastive part is not computed at all and reported as 0.
    """
    t = task_loss(pred, y, task)  # ()
    terms: dict[str, Tensor] = {"task": t.detach()}
    if weight == 0 or kind == "none":
        terms["contrastive"] = torch.zeros((), device=t.device, dtype=t.dtype)
        return t, terms
    c, pair_terms = contrastive_loss(embeddings, pairs, temperature, kind, labels=y)
    terms["contrastive"] = c.detach()
    terms.update({k: v.detach() for k, v in pair_terms.items()})
    return t + weight * c, terms
