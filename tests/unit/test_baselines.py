"""The baselines: shapes, gradients, padding invariance, targets, MISA's losses, dispatch, a CPU fit."""

import json
import math

import pytest
import torch
from batches import DIMS, make_batch  # noqa: I001 (tests/batches.py)

from miar import config as C
from miar.data.batch import Batch
from miar.model import build_model
from miar.model.baselines import BCLSTM, EarlyFusion, LateFusion, Unimodal, packed_lstm
from miar.model.misa import MISA, cmd, diff_loss
from miar.model.mult import MulT, mult_from_hparams
from miar.train import fit

NAMES = ["text_only", "early_fusion", "late_fusion", "bclstm", "mult", "misa"]
CLASSES = dict(zip(NAMES, [Unimodal, EarlyFusion, LateFusion, BCLSTM, MulT, MISA]))


def build(name, dims=DIMS, **model):
    cfg = C.merge(C.Config(), {"model": {"name": name, "d_model": 16, "n_heads": 2, "head_hidden": 8,
                                         **model}})
    return build_model(cfg, dims)


def used(name):
    return ["text"] if name == "text_only" else list(DIMS)


def entry_params(model, m):
    """The parameters of the first layer that sees modality ``m`` (projection, MulT's Conv1d, bc-LSTM's LSTM)."""
    if hasattr(model, "encoders"):
        return list(model.encoders[m].proj.parameters())
    first = model.proj if hasattr(model, "proj") else model.lstm
    return list(first[m].parameters())


@pytest.mark.parametrize("context", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_gradients_reach_every_modality(name, context):
    model = build(name)
    assert isinstance(model, CLASSES[name])
    out = model(make_batch(context=context))
    assert out.pred.shape == (5,) and torch.isfinite(out.pred).all()
    assert out.embeddings == {} and list(out.features) == used(name)
    for f in out.features.values():
        assert f.shape[0] == 5 and f.ndim == 2
    assert set(out.aux) == ({"misa_sim", "misa_diff", "misa_recon"} if name == "misa" else set())
    (out.pred.sum() + sum(out.aux.values(), torch.zeros(()))).backward()
    for m in used(name):
        g = sum(p.grad.abs().sum() for p in entry_params(model, m) if p.grad is not None)
        assert g > 0, f"{name}: no gradient reaches the {m} input layer"


@pytest.mark.parametrize("context", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_padding_does_not_change_predictions(name, context):
    model = build(name).eval()
    b = make_batch(context=context)
    ref = model(b).pred
    for m in DIMS:  # garbage in every padded step
        b.x[m][~b.mask[m]] = 1e3
    assert torch.allclose(model(b).pred, ref, atol=1e-5)
    extra = 3  # more padded steps at the end (context windows: of every modality, as one axis)
    for m in (DIMS if context else ["audio"]):
        b.x[m] = torch.cat([b.x[m], torch.full((5, extra, DIMS[m]), -7.0)], 1)
        b.mask[m] = torch.cat([b.mask[m], torch.zeros(5, extra, dtype=torch.bool)], 1)
    if context:
        b.target = torch.cat([b.target, torch.zeros(5, extra, dtype=torch.bool)], 1)
    assert torch.allclose(model(b).pred, ref, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_context_target_is_used(name):
    model = build(name).eval()
    b = make_batch(context=True)
    ref = model(b).pred
    b.target = torch.roll(b.target, 1, dims=1)  # predict the next utterance instead
    assert not torch.allclose(model(b).pred, ref, atol=1e-4)


def test_text_only_ignores_other_modalities():
    model = build("text_only").eval()
    b = make_batch()
    ref = model(b).pred
    b.x["audio"] = torch.randn_like(b.x["audio"])
    assert torch.equal(model(b).pred, ref)


@pytest.mark.parametrize("name", ["early_fusion", "late_fusion", "bclstm"])
def test_single_modality_subsets(name):
    dims = {"audio": 3}
    b = make_batch()
    b = Batch(x={"audio": b.x["audio"]}, mask={"audio": b.mask["audio"]}, y=b.y, ids=b.ids)
    assert build(name, dims)(b).pred.shape == (5,)


def test_dispatch_and_config_errors():
    for name in NAMES:
        assert isinstance(build(name), CLASSES[name])
    with pytest.raises(C.ConfigError, match="text"):
        build("text_only", {"audio": 3, "vision": 4})
    for name in ["mult", "misa"]:
        with pytest.raises(C.ConfigError, match="two modalities"):
            build(name, {"text": 7})
    assert isinstance(build("mult", {"text": 7, "vision": 4}), MulT)  # any pair works


def test_mult_from_hparams_matches_the_builder():
    a = mult_from_hparams(DIMS, 16, 2, 1, 0.1)
    b = build("mult")
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    assert len(a.mem["text"].blocks) == 3  # MulT's memory transformer: max(n_layers, 3) layers
    assert a.proj1.in_features == 6 * 16  # MulT's combined_dim = 2 * (d_l + d_a + d_v)


def test_late_fusion_starts_as_a_plain_average():
    model = build("late_fusion").eval()
    out = model(make_batch())
    per = torch.stack([model.heads[m](out.features[m]).squeeze(-1) for m in DIMS], 1)  # (B, 3)
    assert torch.allclose(out.pred, per.mean(1), atol=1e-6)


def test_packed_lstm_ignores_padding_wherever_it_is():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    x = torch.randn(1, 3, 3)
    ref, _ = lstm(x)  # (1, 3, 8) no padding
    padded = torch.cat([torch.randn(1, 2, 3), x, torch.randn(1, 1, 3)], 1)  # (1, 6, 3)
    mask = torch.tensor([[False, False, True, True, True, False]])
    out = packed_lstm(lstm, padded, mask)
    assert torch.allclose(out[:, 2:5], ref, atol=1e-6)
    assert out[:, [0, 1, 5]].abs().sum() == 0


def test_cmd_by_hand():
    x = torch.tensor([[0.0], [2.0]])
    assert cmd(x, x.clone()).item() == 0.0
    x1 = x.clone().requires_grad_()
    cmd(x1, x.clone()).backward()
    assert torch.isfinite(x1.grad).all()  # the norm's zero sub-gradient, not NaN
    # means 1 and 1; central moments of x: (1, 0, 1, 0) for k = 2..5, of a constant: 0
    assert cmd(x, torch.tensor([[1.0], [1.0]])).item() == pytest.approx(2.0)
    assert cmd(x, x + 3).item() == pytest.approx(3.0)  # only the means differ


def test_diff_loss_by_hand():
    a = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, -1.0], [0.0, -1.0]])
    assert diff_loss(a, b).item() == pytest.approx(0.0, abs=1e-12)  # orthogonal across the batch
    # identical: A^T A = [[4, 0], [0, 0]] after normalization -> mean of squares 16 / 4
    assert diff_loss(a, a).item() == pytest.approx(4.0, rel=1e-5)


def test_misa_aux_terms_are_weighted_finite_and_positive():
    b = make_batch()
    terms = {}
    for w in (1.0, 2.0):
        torch.manual_seed(0)
        model = build("misa", misa_sim_weight=w, misa_diff_weight=w, misa_recon_weight=w).eval()
        terms[w] = model(b).aux
    for name, v in terms[1.0].items():
        assert v.ndim == 0 and math.isfinite(v.item()) and v.item() > 0, name
        assert terms[2.0][name].item() == pytest.approx(2 * v.item(), rel=1e-5)


def test_fit_smoke_baseline(tmp_path):
    cfg = C.load("smoke", overrides=["model.name=misa", "train.epochs=2", "train.progress=false"])
    metrics = fit(cfg, tmp_path)
    assert math.isfinite(metrics["test"]["mae"])
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs_run"] == 2
    header = (tmp_path / "history.csv").read_text().splitlines()[0]
    assert "train_misa_sim" in header and "train_loss" in header
