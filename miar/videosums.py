"""Every metric of :data:`miar.metrics.METRICS` under weights: per utterance (:func:`weighted_metrics`) and
from per-video sums (:func:`video_sums`, :func:`metrics_from_sums`), so that single models resample fast.

The comparisons resample whole test videos (:mod:`miar.stats`). A resample is a vector of multiplicities
(how often each video was drawn), and every metric here is a function of sums over utterances: counts, hits,
absolute errors, the cells of the two confusion matrices, and the moments that Pearson's r needs. So each
model's predictions are reduced once to :func:`video_sums`, a (S, V, K) array (seeds, videos, sums), and a
resample's metric is :func:`metrics_from_sums` of ``W @ sums`` with ``W`` the (R, V) multiplicities: for 31
videos instead of ~700 utterances that is cheap enough to evaluate every seed of every resample, which the
single-model estimand needs. It equals :func:`weighted_metrics` with each utterance weighted by its video's
multiplicity (a parity test checks it).

Pearson's r is computed from moments about each seed's own mean prediction and the mean label (shifted
sums: no cancellation at the scale of these predictions), and is 0.0 where either side is constant over the
utterances with positive weight, as :func:`miar.metrics._pearson`; "constant" is a variance below 1e-10 of
the sum of squares about the shift (a constant side gives a variance of rounding size only).
"""

from __future__ import annotations

import numpy as np

from miar.metrics import METRICS, _weighted_f1

SUMS = ("n", "abs_err", "acc2_hit", "tp1", "fp1", "fn1", "tp0",  # Has0 (y >= 0) confusion cells
        "n_non0", "non0_hit", "ntp1", "nfp1", "nfn1", "ntp0",  # Non0 (y != 0, y > 0) confusion cells
        "acc5_hit", "acc7_hit", "sp", "sy", "spp", "syy", "spy")  # the last five about the shifts
K = {name: i for i, name in enumerate(SUMS)}
CONSTANT = 1e-10  # a side whose variance is below this fraction of its sum of squares is constant


def _terms(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(S, N, K) per-utterance terms of :data:`SUMS` for predictions ``P`` (S, N) against labels ``y`` (N,)."""
    S, N = P.shape
    yt, pt = y >= 0, P >= 0  # (N,), (S, N)
    nz = (y != 0).astype(np.float64)
    yn, pn = y > 0, P > 0
    ys = y - y.mean()
    ps = P - P.mean(-1, keepdims=True)  # (S, N) about each seed's own mean
    hit5 = np.round(np.clip(P, -2, 2)) == np.round(np.clip(y, -2, 2))
    hit7 = np.round(np.clip(P, -3, 3)) == np.round(np.clip(y, -3, 3))
    cols = {"n": np.ones((S, N)), "abs_err": np.abs(P - y), "acc2_hit": yt == pt, "tp1": yt & pt,
            "fp1": ~yt & pt, "fn1": yt & ~pt, "tp0": ~yt & ~pt, "n_non0": np.broadcast_to(nz, (S, N)),
            "non0_hit": nz * (yn == pn), "ntp1": nz * (yn & pn), "nfp1": nz * (~yn & pn),
            "nfn1": nz * (yn & ~pn), "ntp0": nz * (~yn & ~pn), "acc5_hit": hit5, "acc7_hit": hit7,
            "sp": ps, "sy": np.broadcast_to(ys, (S, N)), "spp": ps * ps, "syy": np.broadcast_to(ys * ys, (S, N)),
            "spy": ps * ys}
    return np.stack([np.asarray(cols[k], dtype=np.float64) for k in SUMS], axis=-1)  # (S, N, K)


def video_sums(P, y, video: np.ndarray) -> np.ndarray:
    """(S, V, K) sums of :data:`SUMS` over each video's utterances, per row (seed) of ``P`` (S, N)."""
    P = np.atleast_2d(np.asarray(P, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    terms = _terms(P, y)  # (S, N, K)
    out = np.zeros((P.shape[0], int(video.max()) + 1, len(SUMS)))
    np.add.at(out, (slice(None), video), terms)  # out[:, video[i]] += terms[:, i]
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _f1(tp1, fp1, fn1, tp0) -> np.ndarray:
    """Two-class F1 weighted by gold support (sklearn's ``average="weighted"``; see
    :func:`miar.metrics._weighted_f1`, of which this is the same formula on the summed cells)."""
    s1, s0 = tp1 + fn1, tp0 + fp1

    def f1(tp, fp, fn):
        d = 2 * tp + fp + fn
        return np.where(d > 0, 2 * tp / np.where(d > 0, d, 1), 0.0)

    return _ratio(f1(tp1, fp1, fn1) * s1 + f1(tp0, fn1, fp1) * s0, s1 + s0)


def _corr(n, sp, sy, spp, syy, spy) -> np.ndarray:
    """Pearson r from shifted moments; 0.0 where a side is constant (see the module docstring)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(n > 0, n, 1.0)
        vp, vy = spp - sp * sp / m, syy - sy * sy / m
        cov = spy - sp * sy / m
        ok = (n > 0) & (vp > CONSTANT * spp) & (vy > CONSTANT * syy)
        return np.where(ok, cov / np.sqrt(np.where(ok, vp * vy, 1.0)), 0.0)


def metrics_from_sums(T: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of ``METRICS`` from summed :data:`SUMS` ``T`` (..., K): arrays of shape (...)."""
    c = {k: T[..., i] for k, i in K.items()}
    out = {"has0_acc2": _ratio(c["acc2_hit"], c["n"]),
           "has0_f1": _f1(c["tp1"], c["fp1"], c["fn1"], c["tp0"]),
           "non0_acc2": _ratio(c["non0_hit"], c["n_non0"]),
           "non0_f1": _f1(c["ntp1"], c["nfp1"], c["nfn1"], c["ntp0"]),
           "acc5": _ratio(c["acc5_hit"], c["n"]), "acc7": _ratio(c["acc7_hit"], c["n"]),
           "mae": _ratio(c["abs_err"], c["n"]),
           "corr": _corr(c["n"], c["sp"], c["sy"], c["spp"], c["syy"], c["spy"])}
    return {k: out[k] for k in METRICS}


def _weighted_corr(P: np.ndarray, y: np.ndarray, W: np.ndarray, sw: np.ndarray) -> np.ndarray:
    """Weighted Pearson r per row; 0.0 where either side is constant (as :func:`miar.metrics._pearson`)."""
    mp = (W * P).sum(-1, keepdims=True) / sw[:, None]  # (R, 1)
    my = (W * y).sum(-1, keepdims=True) / sw[:, None]
    pc, yc = P - mp, y - my  # (R, N)
    vp, vy = (W * pc * pc).sum(-1), (W * yc * yc).sum(-1)
    den = np.sqrt(vp * vy)
    ok = (_weighted_ptp(P, W) > 0) & (_weighted_ptp(np.broadcast_to(y, P.shape), W) > 0) & (den > 0)
    return np.where(ok, (W * pc * yc).sum(-1) / np.where(ok, den, 1.0), 0.0)


def _weighted_ptp(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Range of each row of ``X`` over the entries with positive weight (the constant-side test of
    :func:`miar.metrics._pearson`, so both give 0.0 for exactly the same inputs)."""
    on = W > 0
    return np.where(on, X, -np.inf).max(-1) - np.where(on, X, np.inf).min(-1)


def weighted_metrics(P: np.ndarray, y: np.ndarray, W: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every metric of ``METRICS`` per row of predictions ``P`` (R, N) against labels ``y`` (N,), each
    utterance counted ``W`` (R, N) times (None: once). Returns (R,) arrays; equal to
    :func:`miar.metrics.compute_all` on the rows repeated by their weights."""
    P = np.atleast_2d(np.asarray(P, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    W = np.ones_like(P) if W is None else np.broadcast_to(np.asarray(W, dtype=np.float64), P.shape)
    sw = W.sum(-1)
    yt, pt = y >= 0, P >= 0
    keep = W * (y != 0)  # (R, N) weights of the non-zero labels
    yn, pn = y > 0, P > 0
    out = {
        "has0_acc2": _ratio((W * (yt == pt)).sum(-1), sw),
        "has0_f1": _weighted_f1(yt, pt, W),
        "non0_acc2": _ratio((keep * (yn == pn)).sum(-1), keep.sum(-1)),
        "non0_f1": _weighted_f1(yn, pn, keep),
        "mae": _ratio((W * np.abs(P - y)).sum(-1), sw),
        "corr": _weighted_corr(P, y, W, sw),
    }
    for name, b in (("acc5", 2.0), ("acc7", 3.0)):
        hit = np.round(np.clip(P, -b, b)) == np.round(np.clip(y, -b, b))
        out[name] = _ratio((W * hit).sum(-1), sw)
    return {k: out[k] for k in METRICS}
