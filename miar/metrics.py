"""Evaluation metrics for sentiment regression on CMU-MOSI, following MMSA's ``metricsTop``.

Every function is pure: arrays (numpy, torch or lists) in, python floats out.
``p`` is the real-valued prediction, ``y`` the gold score in [-3, 3]; all values are fractions, not percentages.

- ``has0_acc2`` / ``has0_f1``: all samples, class = (v >= 0) for both p and y.
- ``non0_acc2`` / ``non0_f1``: samples with y == 0 exactly are dropped, class = (v > 0).
- F1 is scikit-learn ``f1_score(y_true, y_pred, average="weighted")``, gold first (``zero_division=0``: the
  default's value without its warning).
- ``acc7``: clip p and y to [-3, 3], round half-to-even (``np.round``), exact match; ``acc5`` clips to [-2, 2].
- ``mae``: mean |p - y|; ``corr``: Pearson r, defined as 0.0 when either side is constant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

METRICS = ("has0_acc2", "has0_f1", "non0_acc2", "non0_f1", "acc5", "acc7", "mae", "corr")
HIGHER_IS_BETTER = {name: name != "mae" for name in METRICS}
MMSA_NAMES = {  # ours -> the key MMSA's metricsTop (regression, MOSI) returns for the same definition
    "has0_acc2": "Has0_acc_2", "has0_f1": "Has0_F1_score", "non0_acc2": "Non0_acc_2", "non0_f1": "Non0_F1_score",
    "acc5": "Mult_acc_5", "acc7": "Mult_acc_7", "mae": "MAE", "corr": "Corr",
}


def _to_numpy(x: Any) -> np.ndarray:
    """Flatten a torch tensor, numpy array or list into a float64 vector."""
    if hasattr(x, "detach"):  # torch tensor without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _check(pred: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and flatten inputs; raise ValueError on empty, mismatched or non-finite input."""
    p, y = _to_numpy(pred), _to_numpy(label)
    if p.size == 0:
        raise ValueError("metrics: empty prediction array")
    if p.size != y.size:
        raise ValueError(f"metrics: {p.size} predictions but {y.size} labels")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"metrics: {int((~np.isfinite(p)).sum())} non-finite predictions")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"metrics: {int((~np.isfinite(y)).sum())} non-finite labels")
    return p, y


def _pearson(p: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson r along ``axis``; 0.0 where either side has zero variance (no warnings)."""
    pc = p - p.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    denom = np.sqrt((pc * pc).sum(axis=axis) * (yc * yc).sum(axis=axis))
    num = (pc * yc).sum(axis=axis)
    safe = (np.ptp(p, axis=axis) > 0) & (np.ptp(y, axis=axis) > 0) & (denom > 0)  # constant side -> 0
    return np.where(safe, num / np.where(safe, denom, 1.0), 0.0)


def _class_acc(p: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact-match accuracy after clipping to [lo, hi] and rounding half-to-even."""
    return float(np.mean(np.round(np.clip(p, lo, hi)) == np.round(np.clip(y, lo, hi))))


def compute_all(pred: Any, label: Any) -> dict[str, float]:
    """All metrics of ``METRICS`` for one set of predictions (definitions in the module docstring).

    The non-zero metrics are nan when every label is exactly 0.
    """
    from sklearn.metrics import f1_score  # imported here: ~1.5 s that most importers of miar never need

    p, y = _check(pred, label)
    out: dict[str, float] = {}
    yt, pt = y >= 0, p >= 0
    out["has0_acc2"] = float(np.mean(yt == pt))
    out["has0_f1"] = float(f1_score(yt, pt, average="weighted", zero_division=0))
    keep = y != 0
    if keep.any():
        yt, pt = y[keep] > 0, p[keep] > 0
        out["non0_acc2"] = float(np.mean(yt == pt))
        out["non0_f1"] = float(f1_score(yt, pt, average="weighted", zero_division=0))
    else:
        out["non0_acc2"] = out["non0_f1"] = float("nan")
    out["acc5"] = _class_acc(p, y, -2.0, 2.0)
    out["acc7"] = _class_acc(p, y, -3.0, 3.0)
    out["mae"] = float(np.mean(np.abs(p - y)))
    out["corr"] = float(_pearson(p, y))
    return {k: out[k] for k in METRICS}


def _weighted_f1(yt: np.ndarray, pt: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Two-class weighted F1 along the last axis, by hand; ``w`` masks which samples count.

    For each class c, F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c) (0 when undefined); the weighted mean uses the gold
    support of each class, which equals sklearn's ``average="weighted"``.
    """
    tp1 = (w * (yt & pt)).sum(-1)
    fp1 = (w * (~yt & pt)).sum(-1)
    fn1 = (w * (yt & ~pt)).sum(-1)
    tp0 = (w * (~yt & ~pt)).sum(-1)
    s1, s0 = tp1 + fn1, tp0 + fp1  # gold supports

    def f1(tp, fp, fn):
        d = 2 * tp + fp + fn
        return np.where(d > 0, 2 * tp / np.where(d > 0, d, 1), 0.0)

    total = s1 + s0
    num = f1(tp1, fp1, fn1) * s1 + f1(tp0, fn1, fp1) * s0
    return np.where(total > 0, num / np.where(total > 0, total, 1), np.nan)


def _batch_metrics(P: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
    """Fast vectorised ``compute_all`` over rows of (R, N) arrays; returns (R,) arrays per metric."""
    ones = np.ones_like(P)
    out = {}
    yt, pt = Y >= 0, P >= 0
    out["has0_acc2"] = (yt == pt).mean(-1)
    out["has0_f1"] = _weighted_f1(yt, pt, ones)
    keep = (Y != 0).astype(np.float64)  # (R, N)
    n_keep = keep.sum(-1)
    yt, pt = Y > 0, P > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out["non0_acc2"] = np.where(n_keep > 0, (keep * (yt == pt)).sum(-1) / n_keep, np.nan)
    out["non0_f1"] = _weighted_f1(yt, pt, keep)
    for name, b in (("acc5", 2.0), ("acc7", 3.0)):
        out[name] = (np.round(np.clip(P, -b, b)) == np.round(np.clip(Y, -b, b))).mean(-1)
    out["mae"] = np.abs(P - Y).mean(-1)
    out["corr"] = _pearson(P, Y, axis=-1)
    return {k: out[k] for k in METRICS}


def bootstrap_ci(
    pred: Any, label: Any, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence intervals for every metric.

    Resamples the N samples with replacement ``n_boot`` times (``np.random.default_rng(seed)``), computes all
    metrics on each resample and returns the (alpha/2, 1 - alpha/2) percentiles (nan-aware for non0 metrics).
    """
    if n_boot < 1 or not 0 < alpha < 1:
        raise ValueError(f"bootstrap_ci: need n_boot >= 1 and 0 < alpha < 1, got {n_boot}, {alpha}")
    p, y = _check(pred, label)
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[float, float]] = {}
    chunk = max(1, 2_000_000 // p.size)  # bound memory of the (R, N) index matrix
    parts: dict[str, list[np.ndarray]] = {k: [] for k in METRICS}
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, p.size, size=(min(chunk, n_boot - start), p.size))  # (R, N)
        for k, v in _batch_metrics(p[idx], y[idx]).items():
            parts[k].append(v)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    for k in METRICS:
        vals = np.concatenate(parts[k])
        if np.all(np.isnan(vals)):
            out[k] = (float("nan"), float("nan"))
        else:
            lo, hi = np.nanpercentile(vals, q)
            out[k] = (float(lo), float(hi))
    return out


def _t975(df: int) -> float:
    """97.5% quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t  # imported here: scipy.stats costs ~0.5 s that most importers never need

    return float(t.ppf(0.975, df))


def summarize_seeds(values: list[float]) -> dict:
    """Summarise one metric over seeds.

    Returns ``mean``, ``std`` (population std, ddof=0, as MMSA reports), ``n`` and ``ci95``: the Student-t 95%
    interval of the mean, mean +- t_{0.975, n-1} * s / sqrt(n) with the sample std s (ddof=1).
    With one value, std is 0 and the interval is [v, v].
    """
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("summarize_seeds: no values")
    mean = float(v.mean())
    if v.size == 1:
        return {"mean": mean, "std": 0.0, "ci95": [mean, mean], "n": 1}
    half = _t975(v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return {"mean": mean, "std": float(v.std(ddof=0)), "ci95": [mean - half, mean + half], "n": int(v.size)}
