"""The single-model estimand: comparisons of single trained models paired by seed, computed from per-video sums."""

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from miar import stats as S
from miar.metrics import METRICS, compute_all
from miar.videosums import metrics_from_sums, video_sums, weighted_metrics

# Two models, 2 seeds, 3 test videos (video 0 holds two utterances), every label 0: an error is |prediction|.
VIDEO = np.array([0, 0, 1, 2])
Y = np.zeros(4)
A = np.array([[1.0, 1.0, 1.0, 1.0],     # seed 1: MAE 1.0
              [-1.0, -1.0, -1.0, -1.0]])  # seed 2: MAE 1.0 (its ensemble with seed 1 has MAE 0)
B = np.array([[0.5, 0.5, 0.5, 0.5],     # seed 1: MAE 0.5
              [0.5, 0.5, 0.5, 1.5]])    # seed 2: MAE 0.75
# By hand: per seed MAE(A) - MAE(B) = 0.5 and 0.25, so the single-model difference is 0.375 (the ensembles'
# would be 0 - 0.625 = -0.625). Per video, the seed-averaged difference of summed errors is
# v0: (2 - 1 + 2 - 1) / 2 = 1, v1: (1 - 0.5 + 1 - 0.5) / 2 = 0.5, v2: (1 - 0.5 + 1 - 1.5) / 2 = 0;
# their sum over the 4 utterances is 1.5 / 4 = 0.375 again.
PER_VIDEO = np.array([1.0, 0.5, 0.0])
N_PER_VIDEO = np.array([2.0, 1.0, 1.0])


def _pair(a=A, b=B):
    return S.Pair(a, b, Y, VIDEO)


def test_point_is_the_mean_of_per_seed_differences_not_the_ensemble_difference():
    """The point estimate is mean over seeds of MAE(A_s) - MAE(B_s), computed by hand above."""
    value_a, value_b, diff = S.point(_pair())["mae"]
    assert (value_a, value_b, diff) == pytest.approx((1.0, 0.625, 0.375))
    ensemble = np.abs(A.mean(0)).mean() - np.abs(B.mean(0)).mean()
    assert ensemble == pytest.approx(-0.625) and diff != pytest.approx(ensemble)


def test_point_equals_the_difference_of_per_seed_table_means_for_every_metric():
    """diff = value_a - value_b = mean(summary-style per-seed metric of A) - mean(the same of B), every metric."""
    rng = np.random.default_rng(3)
    y = np.round(rng.uniform(-3, 3, 60) * 3) / 3  # some labels exactly 0, as MOSI's
    video = np.repeat(np.arange(12), 5)
    a, b = y + rng.normal(0, 0.8, (4, 60)), y + rng.normal(0.2, 1.0, (4, 60))
    pt = S.point(S.Pair(a, b, y, video))
    for m in METRICS:
        mean_a = np.mean([compute_all(p, y)[m] for p in a])
        mean_b = np.mean([compute_all(p, y)[m] for p in b])
        assert pt[m] == pytest.approx((mean_a, mean_b, mean_a - mean_b), abs=1e-12), m


def test_sign_flip_p_value_by_hand():
    """Flipping whole videos (every seed at once): T = (+-1 +-0.5 +-0) / 4; |T| >= 0.375 when v0 and v1 agree:
    4 of 8 swaps, p = 0.5 (the ensemble's statistic would give 2 of 8)."""
    assert S.sign_flip_test(_pair())["mae"] == pytest.approx(0.5)
    flips = np.array(list(itertools.product((1, -1), repeat=3)))
    t = flips @ PER_VIDEO / 4
    assert np.mean(np.abs(t) >= 0.375 - 1e-12) == pytest.approx(0.5)


def test_video_bootstrap_matches_the_enumerated_single_model_distribution():
    """Resampling the 3 videos: each draw gives sum(w * per-video difference) / sum(w * utterances), w the
    multiplicities; the bootstrap's values and frequencies match the 27 equally likely draws."""
    exact = Counter()
    for draw in itertools.product(range(3), repeat=3):
        w = np.bincount(draw, minlength=3)
        exact[round(float(w @ PER_VIDEO / (w @ N_PER_VIDEO)), 9)] += 1 / 27
    dist = S.video_bootstrap(_pair(), resamples=27_000, seed=1)["mae"]
    got = Counter(np.round(dist, 9))
    assert set(got) <= set(exact)
    for value, prob in exact.items():
        assert got[value] / len(dist) == pytest.approx(prob, abs=0.01)


def test_hierarchical_bootstrap_resamples_seeds_as_pairs():
    """When every seed's A and B move together (A_s = B_s - 0.1), the paired difference has no seed variation:
    the hierarchical distribution equals the video-only one. Unpaired seeds would have widened it."""
    rng = np.random.default_rng(0)
    y = rng.uniform(0.5, 3, 40)  # positive labels, predictions above them: |error| = prediction - label
    video = np.repeat(np.arange(10), 4)
    b = y + 1.0 + rng.uniform(0, 1.5, (6, 1))  # seeds differ a lot, by a constant per seed
    pair = S.Pair(b - 0.1, b, y, video)
    h = S.hierarchical_bootstrap(pair, 2000, 4)["mae"]
    assert np.allclose(h, -0.1) and np.allclose(S.video_bootstrap(pair, 2000, 4)["mae"], -0.1)
    shuffled = S.Pair(b[::-1] - 0.1, b, y, video)  # the same models, paired wrongly
    assert np.std(S.hierarchical_bootstrap(shuffled, 2000, 4)["mae"]) > 0.05


def test_a_pair_with_unequal_seed_counts_is_refused():
    """A paired comparison across unequal seeds is not made: Pair refuses it in one line."""
    with pytest.raises(ValueError, match="A has 2 seed\\(s\\), B 1") as e:
        S.Pair(A, B[:1], Y, VIDEO)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("constant", [False, True])
def test_per_video_sums_give_the_weighted_metrics(constant):
    """Parity: every metric from multiplicity-weighted per-video sums equals the metric with each utterance
    weighted by its video's multiplicity, and with unit weights equals compute_all (constant predictions too,
    where Pearson's r is 0)."""
    rng = np.random.default_rng(7)
    y = np.round(rng.uniform(-3, 3, 45) * 3) / 3
    video = rng.integers(0, 9, 45)
    video[:9] = np.arange(9)  # every code 0..8 present
    P = np.full((3, 45), 0.7) if constant else y + rng.normal(0, 1, (3, 45))
    W = rng.multinomial(9, np.full(9, 1 / 9), size=50).astype(float)  # (50, 9)
    sums = video_sums(P, y, video)  # (3, 9, K)
    got = metrics_from_sums(np.einsum("rv,svk->rsk", W, sums))  # (50, 3)
    for s in range(3):
        want = weighted_metrics(np.broadcast_to(P[s], (50, 45)), y, W[:, video])
        ones = metrics_from_sums(sums[s].sum(0))
        for m in METRICS:
            np.testing.assert_allclose(got[m][:, s], want[m], atol=1e-9, err_msg=m)
            assert float(ones[m]) == pytest.approx(compute_all(P[s], y)[m], abs=1e-9), m


def test_committed_comparisons_are_of_single_models_on_equal_seeds():
    """Every committed comparison names its estimand and uses the same seeds on both sides; where a side used
    all its experiment's seeds, its value is that experiment's per-seed mean in summary.csv (to 1e-6: the
    predictions.csv files that comparisons read are rounded to 6 decimals, the metrics.json behind summary.csv
    are not)."""
    import pandas as pd

    from miar.comparisons import ESTIMAND, ESTIMAND_POOLED, NOT_RUN

    root = Path(__file__).resolve().parents[2] / "results" / "tables"
    comps = pd.read_csv(root / "comparisons.csv")
    assert (comps["n_seeds_a"] == comps["n_seeds_b"]).all()
    assert set(comps["estimand"]) <= {ESTIMAND, ESTIMAND_POOLED}
    means = pd.read_csv(root / "summary.csv").set_index("experiment")
    ran = comps[(comps["metric"] == "mae") & (comps["verdict"] != NOT_RUN)]
    checked = 0
    for _, r in ran.iterrows():
        for side in "ab":
            name = r[side]
            if name in means.index and means.loc[name, "n_seeds"] == r[f"n_seeds_{side}"]:
                assert r[f"value_{side}"] == pytest.approx(means.loc[name, "mae_mean"], abs=1e-6), name
                checked += 1
        assert r["diff"] == pytest.approx(r["value_a"] - r["value_b"], abs=1e-12)
    assert checked > 0
