"""Synthetic data: determinism, presets, masks, labels, and the generative truths it encodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from miar.data.batch import MODALITIES, DataError
from miar.data.synthetic import PRESETS, ZERO_FRACTION, make_synthetic
from miar.data.validate import validate_splits

SMALL = dict(n_train=20, n_valid=6, n_test=8)


def _pooled(ds, m: str) -> np.ndarray:
    """Mean over real steps: (N, d)."""
    mk = ds.mask[m].unsqueeze(-1).float()  # (N, T, 1)
    return ((ds.x[m] * mk).sum(1) / mk.sum(1)).numpy().astype(np.float64)


def _ridge_corr(splits, m: str, lam: float = 1.0) -> float:
    """Pearson r on test of a ridge fit (standardised mean-pooled features) on train."""
    xtr, xte = _pooled(splits["train"], m), _pooled(splits["test"], m)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    y = splits["train"].y.numpy().astype(np.float64)
    n, d = xtr.shape
    if n < d:  # dual form: the smaller system
        w = xtr.T @ np.linalg.solve(xtr @ xtr.T + lam * np.eye(n), y - y.mean())  # (d,)
    else:
        w = np.linalg.solve(xtr.T @ xtr + lam * np.eye(d), xtr.T @ (y - y.mean()))  # (d,)
    return float(np.corrcoef(xte @ w, splits["test"].y.numpy())[0, 1])


def test_deterministic_by_seed():
    a, b = make_synthetic(seed=3, **SMALL), make_synthetic(seed=3, **SMALL)
    c = make_synthetic(seed=4, **SMALL)
    for k in a:
        assert a[k].ids == b[k].ids and torch.equal(a[k].y, b[k].y)
        for m in MODALITIES:
            assert torch.equal(a[k].x[m], b[k].x[m]) and torch.equal(a[k].mask[m], b[k].mask[m])
            assert not torch.equal(a[k].x[m], c[k].x[m])
        assert not torch.equal(a[k].y, c[k].y)


def test_presets_sizes_dims_and_meta():
    assert PRESETS["mosi"]["sizes"] == (1284, 229, 686) and PRESETS["mosei"]["sizes"] == (16326, 1871, 4659)
    mosi = make_synthetic("mosi", dims=(4, 5, 20), seq_len=3)  # preset sizes; small text dim for speed
    assert {k: len(v) for k, v in mosi.items()} == {"train": 1284, "valid": 229, "test": 686}
    assert mosi["train"].dims == {"text": 4, "audio": 5, "vision": 20}
    mosei = make_synthetic("mosei", aligned=False, **SMALL)
    assert mosei["test"].dims == {"text": 768, "audio": 74, "vision": 35}
    assert [mosei["test"].x[m].shape[1] for m in MODALITIES] == [50, 500, 500]
    meta = mosei["valid"].meta
    assert meta["preset"] == "mosei" and meta["seed"] == 0 and meta["noise"] == 0.5
    assert meta["strength"] == (1.0, 0.6, 0.3) and meta["shift"] == (0.0, 0.0, 0.0)
    validate_splits(mosei, "synthetic")
    with pytest.raises(DataError, match="unknown synthetic preset"):
        make_synthetic("iemocap")
    with pytest.raises(DataError, match="strength must have 3 entries"):
        make_synthetic(strength=(1.0, 0.5), **SMALL)


def test_aligned_masks():
    ds = make_synthetic(seed=1, seq_len=12, **SMALL)["train"]
    masks = [ds.mask[m] for m in MODALITIES]
    assert all(mk.shape == (20, 12) for mk in masks)
    assert all(torch.equal(mk, masks[0]) for mk in masks)  # one shared length per sample
    lengths = masks[0].sum(1)
    assert lengths.min() >= 1 and lengths.min() < 12  # masks matter
    assert torch.equal(masks[0], torch.arange(12)[None] < lengths[:, None])  # prefix masks
    for m in MODALITIES:
        assert (ds.x[m][~ds.mask[m]] == 0).all() and (ds.x[m][ds.mask[m]].abs().sum(-1) > 0).all()


def test_unaligned_masks():
    ds = make_synthetic(seed=1, aligned=False, unaligned_lens=(10, 30, 40), **SMALL)["test"]
    assert [ds.mask[m].shape[1] for m in MODALITIES] == [10, 30, 40]
    lens = {m: ds.mask[m].sum(1) for m in MODALITIES}
    assert all(v.min() >= 1 and v.max() <= ds.mask[m].shape[1] for m, v in lens.items())
    assert lens["vision"].float().mean() > lens["text"].float().mean()  # each modality its own length
    assert (lens["audio"] < 30).any()
    default = make_synthetic(seed=1, aligned=False, **SMALL)["test"]
    assert [default.x[m].shape[1] for m in MODALITIES] == [50, 375, 500]


def test_labels():
    splits = make_synthetic(seed=2, n_train=3000, n_valid=1, n_test=1, dims=(2, 2, 2), seq_len=2)
    y = splits["train"].y
    assert y.dtype == torch.float32 and y.min() >= -3 and y.max() <= 3
    assert abs(float((y == 0).float().mean()) - ZERO_FRACTION) < 0.015
    assert 1.2 < float(y.std()) < 2.0 and abs(float(y.mean())) < 0.15


def test_label_recoverable_in_proportion_to_strength():
    splits = make_synthetic(seed=0, n_train=500, n_valid=1, n_test=400, dims=(64, 5, 20), noise=0.1,
                            strength=(1.0, 0.0, 0.5))
    r = {m: _ridge_corr(splits, m) for m in MODALITIES}
    assert r["text"] > 0.7  # strong, low noise
    assert abs(r["audio"]) < 0.15  # strength 0: no information
    assert 0.3 < r["vision"] < r["text"]  # weaker strength, weaker signal


def test_full_text_dim_recoverable():
    splits = make_synthetic(seed=0, n_train=200, n_valid=1, n_test=150, noise=0.5)
    assert _ridge_corr(splits, "text", lam=30.0) > 0.5


def test_shift_moves_modality_mean():
    base = make_synthetic(seed=0, **SMALL)["train"]
    moved = make_synthetic(seed=0, shift=(0.0, 2.0, 0.0), **SMALL)["train"]
    assert torch.equal(base.x["text"], moved.x["text"]) and torch.equal(base.x["vision"], moved.x["vision"])
    assert torch.equal(base.mask["audio"], moved.mask["audio"])
    mean0 = base.x["audio"][base.mask["audio"]].mean(0)  # (d,)
    mean1 = moved.x["audio"][moved.mask["audio"]].mean(0)
    d = base.dims["audio"]
    assert float((mean1 - mean0).norm()) > d ** 0.5  # offset of RMS 2 per feature (plus rescaling)
    assert (moved.x["audio"][~moved.mask["audio"]] == 0).all()  # padding untouched
