"""Linear probes of the real data: what the features allow before any model is trained.

- :func:`leakage`: a ridge probe per modality, fitted with grouped folds of whole videos inside the bc training
  part (out-of-fold predictions on held-out *training* videos) and fitted on the whole training part for the
  bc *test* videos. The released text and visual extractors were trained on the bc training labels, so a
  probe that looks far stronger on held-out training videos than on test videos measures that leak.
- :func:`headroom`: inside rows where the features are honest, how much audio (and vision) add to text:
  repeated grouped cross-fitting by video of text alone, text plus each other modality, and of the text
  probe's residual from each other modality. A fusion model can of course be nonlinear; a linear probe that
  finds nothing says the extra modality carries little that a linear read-out of it could add.

Every estimate comes with a 95% percentile interval over videos (:mod:`miar.stats`' weighted metrics with
video multiplicities). Pure functions of arrays; ``scripts/probe_data.py`` runs them on CMU-MOSI and writes
``results/probes/*.json``.
"""

from __future__ import annotations

import numpy as np

from miar.stats import percentile_interval, video_weights, weighted_metrics

ALPHAS = np.logspace(-2, 4, 13)  # ridge penalties tried by the inner (generalised) cross-validation
METRICS = ("corr", "non0_acc2", "mae")


def grouped_folds(groups: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(N,) fold index 0..k-1 per row, whole groups (videos) to a fold, groups shuffled by ``rng``."""
    uniq = np.unique(groups)
    if len(uniq) < k:
        raise ValueError(f"grouped_folds: {len(uniq)} groups cannot make {k} folds")
    order = rng.permutation(len(uniq))
    fold_of = {g: i % k for i, g in zip(range(len(uniq)), uniq[order])}
    return np.array([fold_of[g] for g in groups])


def ridge_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Standardise on the training rows, ridge with the penalty chosen by generalised cross-validation
    (scikit-learn's RidgeCV, efficient leave-one-out), predict the test rows."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))
    return model.fit(x_train, y_train).predict(x_test)


def cross_fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray, k: int = 5, repeats: int = 1,
              seed: int = 0) -> np.ndarray:
    """(N,) out-of-fold ridge predictions, folds of whole groups, averaged over ``repeats`` fold draws."""
    rng = np.random.default_rng(seed)
    out = np.zeros((repeats, len(y)))
    for r in range(repeats):
        fold = grouped_folds(groups, k, rng)
        for f in range(k):
            test = fold == f
            out[r, test] = ridge_predict(x[~test], y[~test], x[test])
    return out.mean(0)


def _video_weights(videos: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    return video_weights(rng, np.unique(videos, return_inverse=True)[1], resamples)  # (R, N)


def probe_metrics(pred: np.ndarray, y: np.ndarray, videos: np.ndarray, resamples: int = 2000,
                  seed: int = 0) -> dict:
    """r, Non0 Acc-2 and MAE of ``pred`` with 95% intervals over videos: {metric: [estimate, low, high]}."""
    point = weighted_metrics(pred, y)
    dist = weighted_metrics(np.broadcast_to(pred, (resamples, len(y))), y,
                            _video_weights(videos, resamples, np.random.default_rng(seed)))
    return {m: [float(point[m][0]), *percentile_interval(dist[m])] for m in METRICS}


def _diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray], m: str) -> np.ndarray:
    return a[m] - b[m]


def leakage(features: dict[str, np.ndarray], y: np.ndarray, videos: np.ndarray, is_train: np.ndarray,
            k: int = 5, resamples: int = 2000, seed: int = 0) -> dict:
    """Per modality: the probe on held-out training videos (``train_heldout``) and on test videos (``test``),
    and ``gap_r``: r(train_heldout) - r(test) with a 95% interval (training and test videos resampled
    independently)."""
    out = {}
    tr, te = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    for name, x in features.items():
        oof = cross_fit(x[tr], y[tr], videos[tr], k=k, seed=seed)
        test = ridge_predict(x[tr], y[tr], x[te])
        rng = np.random.default_rng(seed)
        w_tr, w_te = _video_weights(videos[tr], resamples, rng), _video_weights(videos[te], resamples, rng)
        d_tr = weighted_metrics(np.broadcast_to(oof, w_tr.shape), y[tr], w_tr)
        d_te = weighted_metrics(np.broadcast_to(test, w_te.shape), y[te], w_te)
        gap = float(weighted_metrics(oof, y[tr])["corr"][0] - weighted_metrics(test, y[te])["corr"][0])
        out[name] = {"train_heldout": probe_metrics(oof, y[tr], videos[tr], resamples, seed),
                     "test": probe_metrics(test, y[te], videos[te], resamples, seed),
                     "gap_r": [gap, *percentile_interval(_diff(d_tr, d_te, "corr"))],
                     "n_train_videos": int(len(np.unique(videos[tr]))),
                     "n_test_videos": int(len(np.unique(videos[te])))}
    return out


def headroom(text: np.ndarray, others: dict[str, np.ndarray], y: np.ndarray, videos: np.ndarray, k: int = 5,
             repeats: int = 3, resamples: int = 2000, seed: int = 0) -> dict:
    """Inside honest rows: the text probe, text plus each other modality, and each other modality's
    prediction of the text probe's residual, all cross-fitted by video (``repeats`` x ``k`` folds).
    ``gain_mae``: MAE(text) - MAE(text + other), positive when the other modality helps, with its interval
    (both predictions on the same video resamples)."""
    p_text = cross_fit(text, y, videos, k, repeats, seed)
    w = _video_weights(videos, resamples, np.random.default_rng(seed))
    d_text = weighted_metrics(np.broadcast_to(p_text, w.shape), y, w)
    out = {"text": probe_metrics(p_text, y, videos, resamples, seed), "n_videos": int(len(np.unique(videos))),
           "n_utterances": int(len(y)), "with": {}}
    residual = y - p_text
    for name, x in others.items():
        p_both = cross_fit(np.hstack([text, x]), y, videos, k, repeats, seed)
        d_both = weighted_metrics(np.broadcast_to(p_both, w.shape), y, w)
        p_res = cross_fit(x, residual, videos, k, repeats, seed)
        gain = float(weighted_metrics(p_text, y)["mae"][0] - weighted_metrics(p_both, y)["mae"][0])
        out["with"][name] = {
            "text_plus": probe_metrics(p_both, y, videos, resamples, seed),
            "gain_mae": [gain, *percentile_interval(_diff(d_text, d_both, "mae"))],
            "residual_r": probe_metrics(p_res, residual, videos, resamples, seed)["corr"]}
    return out
