"""Losses on tiny hand-computed cases: InfoNCE, supervised contrastive, temperature, named terms."""

import math

import pytest
import torch
import torch.nn.functional as F

from miar import losses
from miar.losses import Temperature, contrastive_loss, info_nce, sup_con, task_loss, total_loss

EYE = torch.eye(2)


def test_task_loss_by_hand():
    pred, y = torch.tensor([[1.0], [2.0], [-1.0]]), torch.tensor([0.0, 2.0, 1.0])
    assert task_loss(pred, y, "l1").item() == pytest.approx((1 + 0 + 2) / 3)
    assert task_loss(pred, y, "mse").item() == pytest.approx((1 + 0 + 4) / 3)
    with pytest.raises(ValueError, match="kind"):
        task_loss(pred, y, "huber")
    with pytest.raises(ValueError, match="targets"):
        task_loss(pred, y[:2], "l1")


def test_info_nce_2x2_by_hand():
    # logits = I / t: each row is softmax over [1/t, 0]; CE = log(1 + e^{-1/t}) in both directions.
    assert info_nce(EYE, EYE, 1.0).item() == pytest.approx(math.log(1 + math.exp(-1)))
    assert info_nce(EYE, EYE, torch.tensor(0.5)).item() == pytest.approx(math.log(1 + math.exp(-2)))
    # normalisation: scaling rows changes nothing.
    assert info_nce(3 * EYE, 0.2 * EYE, 1.0).item() == pytest.approx(math.log(1 + math.exp(-1)))


def _reference_info_nce(a, b, t):
    """Loop over anchors; the slow path the vectorised loss must match."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    total = 0.0
    for i in range(a.shape[0]):
        total -= torch.log_softmax(a[i] @ b.T / t, 0)[i] + torch.log_softmax(b[i] @ a.T / t, 0)[i]
    return total / (2 * a.shape[0])


def test_info_nce_symmetric_and_matches_loop():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    assert info_nce(a, b, 0.1).item() == pytest.approx(info_nce(b, a, 0.1).item(), rel=1e-6)
    assert info_nce(a, b, 0.1).item() == pytest.approx(_reference_info_nce(a, b, 0.1).item(), rel=1e-5)
    with pytest.raises(ValueError):
        info_nce(a, b[:5], 0.1)


def test_sup_con_2x2_by_hand():
    # opposite polarity: the only positive is the sample itself -> same as InfoNCE.
    assert sup_con(EYE, EYE, 1.0, torch.tensor([1.0, -1.0])).item() == pytest.approx(math.log(1 + math.exp(-1)))
    # same polarity (0 counts as non-negative): both columns positive; -mean(log softmax [1, 0]) = log(1+e) - 1/2.
    expected = math.log(1 + math.e) - 0.5
    assert sup_con(EYE, EYE, 1.0, torch.tensor([0.0, 2.0])).item() == pytest.approx(expected)
    assert sup_con(EYE, EYE, 1.0, torch.tensor([0.0, -0.5])).item() == pytest.approx(math.log(1 + math.exp(-1)))


def test_sup_con_symmetric_and_skips_anchors_without_positives():
    g = torch.Generator().manual_seed(1)
    a, b, y = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.randn(5, generator=g)
    assert sup_con(a, b, 0.2, y).item() == pytest.approx(sup_con(b, a, 0.2, y).item(), rel=1e-6)
    logits = torch.randn(3, 3, requires_grad=True)
    zero = losses._supcon_direction(logits, torch.zeros(3, 3))
    assert zero.item() == 0.0 and zero.requires_grad
    zero.backward()
    pos = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 1]])  # anchor 1 has none: mean over anchors 0 and 2
    logp = torch.log_softmax(logits.detach(), 1)
    got = losses._supcon_direction(logits.detach(), pos).item()
    assert got == pytest.approx(-(logp[0, 0] + logp[2, 2]).item() / 2, rel=1e-6)


@pytest.mark.parametrize("kind", ["infonce", "supcon"])
def test_gradients_flow(kind):
    g = torch.Generator().manual_seed(2)
    a = torch.randn(4, 3, generator=g, requires_grad=True)
    b = torch.randn(4, 3, generator=g, requires_grad=True)
    y = torch.tensor([1.0, -1.0, 0.0, 2.0])
    loss, _ = contrastive_loss({"text": a, "audio": b}, [("text", "audio")], 0.1, kind, labels=y)
    loss.backward()
    for t in (a, b):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_temperature_learnable_fixed_and_clamped():
    learn = Temperature(0.07, learnable=True)
    assert learn().item() == pytest.approx(0.07, rel=1e-6)
    assert [n for n, _ in learn.named_parameters()] == ["log_scale"]
    a = torch.randn(4, 3, generator=torch.Generator().manual_seed(3))
    info_nce(a, a + 0.1, learn).backward()
    assert learn.log_scale.grad is not None and learn.log_scale.grad.abs() > 0
    fixed = Temperature(0.1, learnable=False)
    assert list(fixed.parameters()) == [] and "log_scale" in fixed.state_dict()
    assert Temperature(0.001, True)().item() == pytest.approx(0.01)
    assert Temperature(5.0, False)().item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        Temperature(0.0, True)


def _batch():
    g = torch.Generator().manual_seed(4)
    emb = {m: torch.randn(4, 3, generator=g, requires_grad=True) for m in ("text", "audio", "vision")}
    return torch.randn(4, generator=g, requires_grad=True), torch.tensor([1.0, -1.0, 0.0, 2.0]), emb


def test_total_loss_named_terms():
    pred, y, emb = _batch()
    pairs = [("text", "audio"), ("text", "vision")]
    total, terms = total_loss(pred, y, emb, task="l1", weight=0.5, pairs=pairs, temperature=0.1, kind="infonce")
    assert set(terms) == {"task", "contrastive", "nce_text_audio", "nce_text_vision"}
    assert not any(v.requires_grad for v in terms.values())
    assert terms["task"].item() == pytest.approx(task_loss(pred, y, "l1").item())
    assert terms["nce_text_audio"].item() == pytest.approx(info_nce(emb["text"], emb["audio"], 0.1).item())
    mean = (terms["nce_text_audio"] + terms["nce_text_vision"]) / 2
    assert terms["contrastive"].item() == pytest.approx(mean.item())
    assert total.item() == pytest.approx(terms["task"].item() + 0.5 * terms["contrastive"].item())
    total.backward()
    assert emb["vision"].grad is not None
    _, sc = total_loss(pred, y, emb, task="mse", weight=1.0, pairs=pairs[:1], temperature=0.1, kind="supcon")
    assert sc["supcon_text_audio"].item() == pytest.approx(sup_con(emb["text"], emb["audio"], 0.1, y).item())


@pytest.mark.parametrize("weight,kind", [(0.0, "infonce"), (1.0, "none")])
def test_total_loss_skips_contrastive(weight, kind):
    pred, y, _ = _batch()
    # empty embeddings would raise if the contrastive part were computed.
    pairs = [("text", "audio")]
    total, terms = total_loss(pred, y, {}, task="l1", weight=weight, pairs=pairs, temperature=0.1, kind=kind)
    assert set(terms) == {"task", "contrastive"} and terms["contrastive"].item() == 0.0
    assert total.item() == pytest.approx(terms["task"].item()) and total.requires_grad


def test_contrastive_loss_errors():
    _, y, emb = _batch()
    with pytest.raises(ValueError, match="kind"):
        contrastive_loss(emb, [("text", "audio")], 0.1, "triplet")
    with pytest.raises(ValueError, match="labels"):
        contrastive_loss(emb, [("text", "audio")], 0.1, "supcon")
    with pytest.raises(ValueError, match="no embedding"):
        contrastive_loss(emb, [("text", "fused")], 0.1, "infonce")
