"""Metrics on tiny hand-computed cases, parity of the fast bootstrap path with sklearn, and seed summaries."""

import math
import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from miar import metrics
from miar.metrics import HIGHER_IS_BETTER, METRICS, bootstrap_ci, compute_all, summarize_seeds


def test_names_and_directions():
    assert METRICS == ("has0_acc2", "has0_f1", "non0_acc2", "non0_f1", "acc5", "acc7", "mae", "corr")
    assert HIGHER_IS_BETTER == {m: m != "mae" for m in METRICS}
    out = compute_all([0.1, -0.2, 1.0], [0.3, -1.0, 2.0])
    assert tuple(out) == METRICS and all(type(v) is float for v in out.values())


def test_acc7_rounds_half_to_even():
    # np.round: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -2.5 -> -2 (half-away-from-zero would score 1/5).
    out = compute_all([0.5, 1.5, 2.5, -0.5, -2.5], [0.0, 2.0, 2.0, 0.0, -2.0])
    assert out["acc7"] == 1.0


def test_acc5_and_acc7_clip():
    # acc5 clips to [-2, 2]: preds -> [2, -2, 1], labels -> [2, -2, 1]; acc7 clips to [-3, 3]: [3, -3, 1] vs [2, -2, 1].
    out = compute_all([2.6, -3.0, 1.4], [2.0, -2.4, 1.0])
    assert out["acc5"] == 1.0
    assert out["acc7"] == pytest.approx(1 / 3)
    # clipping also applies to predictions beyond the scale: 4.2 -> 3 matches label 3.
    assert compute_all([4.2, -9.0], [3.0, -3.0])["acc7"] == 1.0


def test_has0_vs_non0_with_zero_labels_and_f1_gold_first():
    label = [0.0, 0.0, 1.0, -1.0, 2.0]
    pred = [-0.5, 0.3, 0.8, -0.2, -1.0]
    out = compute_all(pred, label)
    # has0: gold [1,1,1,0,1], pred [0,1,1,0,0] -> 3/5 correct.
    assert out["has0_acc2"] == pytest.approx(0.6)
    # class 1: tp 2, fp 0, fn 2 -> F1 2/3, support 4; class 0: tp 1, fp 2, fn 0 -> F1 1/2, support 1.
    assert out["has0_f1"] == pytest.approx((4 * 2 / 3 + 1 * 1 / 2) / 5)  # 19/30
    yt, pt = np.array(label) >= 0, np.array(pred) >= 0
    assert out["has0_f1"] == pytest.approx(f1_score(yt, pt, average="weighted"))
    # swapping the arguments weights by predicted support (2 and 3) instead: 17/30, a different number.
    swapped = f1_score(pt, yt, average="weighted")
    assert swapped == pytest.approx((2 * 2 / 3 + 3 * 1 / 2) / 5)
    assert abs(swapped - out["has0_f1"]) > 0.05
    # non0: the two zero labels are dropped; gold [1,0,1], pred [1,0,0].
    assert out["non0_acc2"] == pytest.approx(2 / 3)
    assert out["non0_f1"] == pytest.approx((2 * 2 / 3 + 1 * 2 / 3) / 3)


def test_zero_prediction_is_positive_for_has0_only_and_constant_corr_is_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from corr, no UndefinedMetricWarning from F1
        out = compute_all([0.0, 0.0, 0.0], [1.0, -1.0, 0.5])
    assert out["has0_acc2"] == pytest.approx(2 / 3)  # pred 0 counts as >= 0
    assert out["non0_acc2"] == pytest.approx(1 / 3)  # pred 0 is not > 0
    assert out["corr"] == 0.0
    assert compute_all([0.1, 0.1, 0.1], [1.0, -1.0, 0.5])["corr"] == 0.0
    assert compute_all([1.0, 2.0], [0.5, 0.5])["corr"] == 0.0


def test_mae_and_corr_by_hand():
    out = compute_all(np.array([1.0, 2.0, 3.0]), torch.tensor([[1.5], [1.0], [3.0]]))
    assert out["mae"] == pytest.approx(0.5)
    # centred pred [-1, 0, 1]; centred label [-1/3, -5/6, 7/6]: cov 3/2, sums of squares 2 and 13/6.
    assert out["corr"] == pytest.approx(1.5 / math.sqrt(2 * 13 / 6))
    assert out["corr"] == pytest.approx(np.corrcoef([1, 2, 3], [1.5, 1, 3])[0, 1])


def test_all_zero_labels_give_nan_non0():
    out = compute_all([0.2, -0.1], [0.0, 0.0])
    assert math.isnan(out["non0_acc2"]) and math.isnan(out["non0_f1"])
    assert out["has0_acc2"] == 0.5


@pytest.mark.parametrize(
    "pred,label,match",
    [([], [], "empty"), ([1.0, 2.0], [1.0], "2 predictions but 1"), ([np.nan, 1.0], [0.0, 1.0], "non-finite")],
)
def test_bad_input_raises(pred, label, match):
    with pytest.raises(ValueError, match=match):
        compute_all(pred, label)


def _mosi_like(n, seed):
    rng = np.random.default_rng(seed)
    label = np.round(rng.uniform(-3, 3, n) * 3) / 3  # MOSI labels are averages of 3 votes: many exact zeros
    label[: n // 10] = 0.0
    pred = label * 0.6 + rng.normal(0, 0.8, n)
    pred[: n // 20] = 0.0  # exact zeros in predictions too
    return pred, label


def test_fast_path_matches_compute_all():
    for seed in range(5):
        pred, label = _mosi_like(97, seed)
        fast = metrics._batch_metrics(pred[None], label[None])
        ref = compute_all(pred, label)
        for k in METRICS:
            assert fast[k][0] == pytest.approx(ref[k], abs=1e-12), k


def test_fast_weighted_f1_matches_sklearn_on_skewed_cases():
    rng = np.random.default_rng(3)
    for _ in range(20):
        yt, pt = rng.random(15) < rng.random(), rng.random(15) < rng.random()
        fast = metrics._weighted_f1(yt, pt, np.ones(15))
        assert fast == pytest.approx(f1_score(yt, pt, average="weighted", zero_division=0), abs=1e-12)


def test_bootstrap_ci_contains_point_and_is_deterministic():
    pred, label = _mosi_like(752, 0)
    t0 = time.perf_counter()
    ci = bootstrap_ci(pred, label, n_boot=1000, seed=0)
    assert time.perf_counter() - t0 < 3.0
    point = compute_all(pred, label)
    for k in METRICS:
        lo, hi = ci[k]
        assert lo <= point[k] <= hi, k
        assert hi - lo < 0.2, k
    assert bootstrap_ci(pred, label, n_boot=1000, seed=0) == ci
    assert bootstrap_ci(pred, label, n_boot=1000, seed=1) != ci
    narrow = bootstrap_ci(pred, label, n_boot=1000, alpha=0.5, seed=0)
    assert narrow["mae"][1] - narrow["mae"][0] < ci["mae"][1] - ci["mae"][0]


def test_summarize_seeds_by_hand():
    s = summarize_seeds([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["n"] == 3
    assert s["std"] == pytest.approx(math.sqrt(2 / 3))  # population std, ddof 0
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} * sample std (1.0) / sqrt(n)
    assert s["ci95"] == pytest.approx([2.0 - half, 2.0 + half])
    assert summarize_seeds([0.5]) == {"mean": 0.5, "std": 0.0, "ci95": [0.5, 0.5], "n": 1}
    with pytest.raises(ValueError):
        summarize_seeds([])


def test_bootstrap_ci_is_scipys_percentile_bootstrap():
    """Same seed, same index draws: the vectorised bootstrap equals scipy.stats.bootstrap's percentile method."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(3)
    label = rng.uniform(-3, 3, 300)
    pred = label + rng.normal(0, 1, 300)
    ours = bootstrap_ci(pred, label, n_boot=500, seed=7)
    for name, stat in (("mae", lambda p, y, axis: np.abs(p - y).mean(axis)),
                       ("acc7", lambda p, y, axis: (np.round(np.clip(p, -3, 3)) == np.round(np.clip(y, -3, 3)))
                        .mean(axis))):
        ref = bootstrap((pred, label), stat, paired=True, vectorized=True, n_resamples=500, batch=None,
                        method="percentile", confidence_level=0.95, rng=np.random.default_rng(7))
        assert ours[name] == pytest.approx(tuple(ref.confidence_interval), abs=1e-12), name
