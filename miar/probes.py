"""Probes of the real data: what the features allow before any model is trained.

- :func:`leakage`: a ridge probe per modality, fitted with grouped folds of whole videos inside the bc training
  part (out-of-fold predictions on held-out *training* videos) and fitted on the whole training part for the
  bc *test* videos. The released text and visual extractors were trained on the bc training labels, so a
  probe that looks far stronger on held-out training videos than on test videos measures that leak.
- :func:`headroom`: inside rows where the features are honest, how much audio (and vision) add to text:
  repeated grouped cross-fitting by video of text alone, text plus each other modality, and of the text
  probe's residual from each other modality. A fusion model can of course be nonlinear; a linear probe that
  finds nothing says the extra modality carries little that a linear read-out of it could add.
  ``learner="rbf"`` repeats the same design (same folds, repeats and video resamples) with an RBF kernel ridge
  (:func:`rbf_ridge_predict`), a nonlinear read-out that can use interactions between and within modalities.

Every estimate comes with a 95% percentile interval over videos (:mod:`miar.stats`' weighted metrics with
video multiplicities). Pure functions of arrays; ``scripts/probe_data.py`` runs them on CMU-MOSI and writes
``results/probes/*.json``.
"""

from __future__ import annotations

import numpy as np

from miar.stats import percentile_interval, video_weights, weighted_metrics

ALPHAS = np.logspace(-2, 4, 13)  # ridge penalties tried by the inner (generalised) cross-validation
KERNEL_ALPHAS = np.logspace(-3, 3, 13)  # kernel ridge penalties tried by the inner leave-one-video-out
KERNEL_SHARES = (0.0, 0.1, 0.25, 0.5)  # the added modality's share of the kernel distance, chosen the same way
NYSTROEM_LANDMARKS = 400  # training rows whose kernel columns approximate the RBF kernel (all rows if fewer)
METRICS = ("corr", "non0_acc2", "mae")
LEARNERS = ("ridge", "rbf")  # linear ridge (ridge_predict) or RBF kernel ridge (rbf_ridge_predict)


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


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both parts z-scored with the training rows' mean and SD (a constant column is only centred), as
    scikit-learn's StandardScaler does."""
    mu, sd = x_train.mean(0), x_train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x_train - mu) / sd, (x_test - mu) / sd


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) squared Euclidean distances between the rows of ``a`` and ``b``."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T  # (n, m)
    return np.maximum(d, 0.0)


def _loo_video_mse(lam: np.ndarray, q: np.ndarray, y: np.ndarray, groups: np.ndarray, alpha: float) -> float:
    """Mean squared leave-one-video-out residual of ridge with penalty ``alpha`` on features Phi = Q S V'
    (``q`` = Q, ``lam`` = S^2), exactly: the hat matrix is H = Q diag(lam / (lam + alpha)) Q', and a video's
    residuals are (I - H_gg)^-1 (y_g - yhat_g)."""
    shrink = lam / (lam + alpha)  # (r,) eigenvalues of the hat matrix H
    fitted = q @ (shrink * (q.T @ y))  # (n,)
    total = 0.0
    for g in np.unique(groups):
        rows = groups == g
        qg = q[rows]  # (n_g, r)
        h_gg = (qg * shrink) @ qg.T  # (n_g, n_g)
        res = np.linalg.solve(np.eye(len(qg)) - h_gg, y[rows] - fitted[rows])
        total += float(res @ res)
    return total / len(y)


def _nystrom(z_train: np.ndarray, z_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nystroem features of the RBF kernel exp(-|z - z'|^2): ``NYSTROEM_LANDMARKS`` training rows drawn with
    a fixed seed (all rows when there are fewer), so Phi Phi' approximates the kernel matrix; (n, r), (m, r)."""
    rng = np.random.default_rng(0)
    land = z_train[np.sort(rng.choice(len(z_train), min(NYSTROEM_LANDMARKS, len(z_train)), replace=False))]
    w, v = np.linalg.eigh(np.exp(-_sq_dist(land, land)))  # (L,), (L, L)
    keep = w > 1e-10 * w.max()
    proj = v[:, keep] / np.sqrt(w[keep])  # (L, r): K_LL^(-1/2) on its numerical range
    return np.exp(-_sq_dist(z_train, land)) @ proj, np.exp(-_sq_dist(z_test, land)) @ proj


def _kernel_fit(phi: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, np.ndarray]:
    """(leave-one-video-out MSE, primal coefficients) of ridge on the kernel features ``phi`` with the best
    ``KERNEL_ALPHAS`` penalty; ``y`` centred."""
    lam, v = np.linalg.eigh(phi.T @ phi)  # (r,), (r, r): Phi = U S V' with S^2 = lam (cheaper than an SVD)
    keep = lam > 1e-10 * lam.max()
    lam, v = lam[keep], v[:, keep]
    u = phi @ v / np.sqrt(lam)  # (n, r')
    mse, alpha = min((_loo_video_mse(lam, u, y, groups, a), a) for a in KERNEL_ALPHAS)
    return mse, v @ (u.T @ y / (np.sqrt(lam) * (1.0 + alpha / lam)))  # (r,): V S / (S^2 + alpha) U'y


def _block_scales(blocks: tuple[int, ...], share: float) -> np.ndarray:
    """(d,) column scales: block m of width d_m gets sqrt(s_m / d_m), s_m its share of the squared distance
    (one block: 1; two: 1 - share and share)."""
    shares = (1.0,) if len(blocks) == 1 else (1.0 - share, share)
    return np.concatenate([np.full(d, np.sqrt(s / d)) for d, s in zip(blocks, shares)])


def rbf_ridge_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, groups_train: np.ndarray,
                      blocks: tuple[int, ...] | None = None) -> np.ndarray:
    """RBF kernel ridge with declared settings. Columns are standardised on the training rows and the kernel
    is exp(-sum_m s_m |z_m - z_m'|^2 / d_m) over ``blocks`` (column widths, one per modality, in order; at
    most two): with shares s_m adding up to 1 the typical exponent is -2 whatever the widths (scikit-learn's
    ``gamma='scale'`` for one block). With two blocks (text, other) the other's share is one of
    ``KERNEL_SHARES`` (0: the text kernel alone); the share and the penalty (``KERNEL_ALPHAS``) are chosen
    together by the smallest leave-one-video-out error on the training rows (exact for the approximate
    kernel). The kernel is approximated by Nystroem features on ``NYSTROEM_LANDMARKS`` training rows (exact
    up to that many rows): an exact kernel ridge on 1,760 rows takes an eigendecomposition of seconds to tens of
    seconds per fit and share, the approximation a fraction of a second. The intercept is the training mean."""
    blocks = tuple(blocks or (x_train.shape[1],))
    if sum(blocks) != x_train.shape[1] or not 1 <= len(blocks) <= 2:
        raise ValueError(f"rbf_ridge_predict: blocks {blocks} must be one or two widths adding up to "
                         f"{x_train.shape[1]} columns")
    z_train, z_test = _standardise(x_train, x_test)
    mean = y_train.mean()
    best = None
    for share in (KERNEL_SHARES if len(blocks) == 2 else (1.0,)):
        scale = _block_scales(blocks, share)  # (d,)
        phi_train, phi_test = _nystrom(z_train * scale, z_test * scale)  # (n, r), (m, r)
        mse, coef = _kernel_fit(phi_train, y_train - mean, groups_train)
        if best is None or mse < best[0]:
            best = (mse, phi_test @ coef + mean)
    return best[1]


def fit_predict(learner: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                groups_train: np.ndarray, blocks: tuple[int, ...] | None = None) -> np.ndarray:
    """Predictions of the test rows by ``learner`` (one of ``LEARNERS``) fitted on the training rows."""
    if learner == "ridge":
        return ridge_predict(x_train, y_train, x_test)
    if learner == "rbf":
        return rbf_ridge_predict(x_train, y_train, x_test, groups_train, blocks)
    raise ValueError(f"unknown probe learner {learner!r} (expected one of {', '.join(LEARNERS)})")


def cross_fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray, k: int = 5, repeats: int = 1,
              seed: int = 0, learner: str = "ridge", blocks: tuple[int, ...] | None = None) -> np.ndarray:
    """(N,) out-of-fold predictions of ``learner``, folds of whole groups, averaged over ``repeats`` fold
    draws; the folds depend only on ``groups``, ``k`` and ``seed``, so every learner gets the same ones."""
    rng = np.random.default_rng(seed)
    out = np.zeros((repeats, len(y)))
    for r in range(repeats):
        fold = grouped_folds(groups, k, rng)
        for f in range(k):
            test = fold == f
            out[r, test] = fit_predict(learner, x[~test], y[~test], x[test], groups[~test], blocks)
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
             repeats: int = 3, resamples: int = 2000, seed: int = 0, learner: str = "ridge") -> dict:
    """Inside honest rows: the text probe, text plus each other modality, and each other modality's
    prediction of the text probe's residual, all cross-fitted by video (``repeats`` x ``k`` folds) with
    ``learner`` (the residual is that learner's text probe's). ``gain_mae``: MAE(text) - MAE(text + other),
    positive when the other modality helps, with its interval (both predictions on the same video
    resamples). Folds and resamples depend only on ``videos`` and ``seed``: the same for every learner."""
    p_text = cross_fit(text, y, videos, k, repeats, seed, learner, (text.shape[1],))
    w = _video_weights(videos, resamples, np.random.default_rng(seed))
    d_text = weighted_metrics(np.broadcast_to(p_text, w.shape), y, w)
    out = {"text": probe_metrics(p_text, y, videos, resamples, seed), "n_videos": int(len(np.unique(videos))),
           "n_utterances": int(len(y)), "with": {}}
    residual = y - p_text
    for name, x in others.items():
        p_both = cross_fit(np.hstack([text, x]), y, videos, k, repeats, seed, learner,
                           (text.shape[1], x.shape[1]))
        d_both = weighted_metrics(np.broadcast_to(p_both, w.shape), y, w)
        p_res = cross_fit(x, residual, videos, k, repeats, seed, learner, (x.shape[1],))
        gain = float(weighted_metrics(p_text, y)["mae"][0] - weighted_metrics(p_both, y)["mae"][0])
        out["with"][name] = {
            "text_plus": probe_metrics(p_both, y, videos, resamples, seed),
            "gain_mae": [gain, *percentile_interval(_diff(d_text, d_both, "mae"))],
            "residual_r": probe_metrics(p_res, residual, videos, resamples, seed)["corr"]}
    return out


def describe_features(x: np.ndarray) -> dict:
    """What a released feature table is, as numbers: its shape, value range, the spread of its per-dimension
    SDs, and what the study's z-scoring (:func:`miar.data.batch.zscore_stats`, ``apply_zscore``) does to it
    with the statistics of all rows: dimensions only centred (SD below ``MIN_STD``) and values clipped at
    +-``Z_CLIP``."""
    from miar.data.batch import MIN_STD, Z_CLIP, zscore_stats

    sd = x.std(0)
    mu, scale = zscore_stats(x)
    z = (x - mu) / scale  # (N, d) before clipping
    return {"rows": int(x.shape[0]), "dim": int(x.shape[1]), "min": float(x.min()), "max": float(x.max()),
            "sd_min": float(sd.min()), "sd_max": float(sd.max()), "min_std": MIN_STD, "z_clip": Z_CLIP,
            "dims_only_centred": int((sd < MIN_STD).sum()),
            "clipped_fraction": float((np.abs(z) > Z_CLIP).mean())}
