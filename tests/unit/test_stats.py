"""miar.stats: hand-checkable cases for the video bootstrap, the permutation test, Holm, TOST, power and the
verdict rule."""

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from miar import stats as S
from miar.metrics import METRICS, compute_all


def _pair(a, b, y, video):
    return S.Pair(np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float)),
                  np.asarray(y, float), np.asarray(video))


def test_video_of_reads_both_id_formats():
    assert S.video_of("03bSnISJMiM_12") == "03bSnISJMiM"
    assert S.video_of("c7UH_rxdZv4_2") == "c7UH_rxdZv4"
    assert S.video_of("abc_def$_$3") == "abc_def"
    assert S.video_codes(["b_1", "a_1", "b_2", "a_x_3"]).tolist() == [2, 0, 2, 1]  # sorted: a, a_x, b


@settings(max_examples=40, deadline=None)
@example([(0.0, 0.0, 1), (1.0, 1.175494351e-38, 1)])  # a label range of 1e-38: still not constant
@given(st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.integers(0, 3)), min_size=2, max_size=30))
def test_weighted_metrics_equal_compute_all_on_repeated_rows(rows):
    p, y, w = (np.array(c, float) for c in zip(*rows))
    if w.sum() == 0:
        w[0] = 1
    got = S.weighted_metrics(p, y, w[None])
    want = compute_all(np.repeat(p, w.astype(int)), np.repeat(y, w.astype(int)))
    for m in METRICS:
        assert got[m][0] == pytest.approx(want[m], abs=1e-9, nan_ok=True), m


def test_video_bootstrap_matches_the_enumerated_distribution():
    """Three videos: the 27 equally likely ordered draws give the exact distribution of the MAE difference."""
    y = np.array([1.0, -1.0, 2.0, 0.5, -2.0])
    video = np.array([0, 0, 1, 2, 2])
    a = np.array([0.5, -0.5, 1.0, 0.0, -1.0])
    b = np.array([1.5, 0.0, 2.5, 1.5, -2.5])
    exact = Counter()
    for draw in itertools.product(range(3), repeat=3):
        w = np.bincount(draw, minlength=3)[video].astype(float)
        d = np.sum(w * np.abs(a - y)) / w.sum() - np.sum(w * np.abs(b - y)) / w.sum()
        exact[round(d, 9)] += 1 / 27
    dist = S.video_bootstrap(_pair(a, b, y, video), resamples=27_000, seed=1)["mae"]
    seen = Counter(np.round(dist, 9))
    assert set(seen) <= set(exact)  # every resample is one of the enumerated outcomes
    for value, prob in exact.items():
        assert seen[value] / len(dist) == pytest.approx(prob, abs=0.01)


def test_video_bootstrap_agrees_with_scipy_when_each_video_has_one_utterance():
    rng = np.random.default_rng(0)
    y = rng.normal(size=80)
    a, b = y + rng.normal(0, 0.8, 80), y + rng.normal(0, 1.0, 80)
    dist = S.video_bootstrap(_pair(a, b, y, np.arange(80)), resamples=20_000, seed=2)["mae"]
    ours = S.percentile_interval(dist)

    def stat(pa, pb, yy, axis=-1):
        return np.mean(np.abs(pa - yy), axis=axis) - np.mean(np.abs(pb - yy), axis=axis)

    ref = sps.bootstrap((a, b, y), stat, paired=True, vectorized=True, n_resamples=20_000, method="percentile",
                        random_state=3).confidence_interval
    width = ref.high - ref.low
    assert ours[0] == pytest.approx(ref.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(ref.high, abs=0.05 * width)


def test_hierarchical_bootstrap_is_wider_when_seeds_disagree():
    rng = np.random.default_rng(1)
    y = rng.normal(size=60)
    video = np.repeat(np.arange(12), 5)
    a = y + rng.normal(0, 0.5, (5, 60)) + rng.normal(0, 0.3, (5, 1))  # seeds shift the whole prediction
    b = y + rng.normal(0, 0.5, (5, 60)) + rng.normal(0, 0.3, (5, 1))
    pair = S.Pair(a, b, y, video)
    sv = np.std(S.video_bootstrap(pair, 4000, 0)["mae"])
    sh = np.std(S.hierarchical_bootstrap(pair, 4000, 0)["mae"])
    assert sh > sv
    one_seed = S.Pair(a[:1], b[:1], y, video)  # one seed per side: nothing to resample but the videos
    same = S.hierarchical_bootstrap(one_seed, 3000, 5)["mae"]
    assert np.std(same) == pytest.approx(np.std(S.video_bootstrap(one_seed, 3000, 5)["mae"]), rel=0.1)


def test_sign_flip_p_value_with_a_known_answer():
    """Three videos, A's error smaller on each: of the 8 swaps only 'none' and 'all' reach |T| -> p = 2/8."""
    y = np.zeros(3)
    a, b = np.array([0.1, 0.2, 0.3]), np.array([1.0, 1.1, 1.2])
    p = S.sign_flip_test(_pair(a, b, y, np.arange(3)))
    assert p["mae"] == pytest.approx(2 / 8)


def test_sign_flip_p_value_is_one_for_identical_predictions_and_small_for_a_clear_gap():
    rng = np.random.default_rng(4)
    y = rng.normal(size=200)
    video = np.repeat(np.arange(40), 5)
    same = S.sign_flip_test(_pair(y + 0.3, y + 0.3, y, video), resamples=999)
    assert same["mae"] == 1.0
    clear = S.sign_flip_test(_pair(y + rng.normal(0, 0.2, 200), y + rng.normal(0, 1.5, 200), y, video),
                             resamples=999, seed=1)
    assert clear["mae"] == pytest.approx(1 / 1000)


def test_holm_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04) = 0.06
    got = S.holm([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(S.holm([0.5, math.nan, 0.9])[1])  # nan stays nan and is not counted
    assert S.holm([0.5, math.nan, 0.9])[[0, 2]] == pytest.approx([1.0, 1.0])
    assert S.holm([0.6]) == pytest.approx([0.6])


def test_tost_against_a_direct_computation():
    d = np.array([-0.03, -0.01, 0.0, 0.005, 0.01, 0.015, 0.025])
    margin = 0.02
    low, high = np.sum(d <= -margin), np.sum(d >= margin)
    assert S.tost(d, margin) == pytest.approx((1 + max(low, high)) / (1 + d.size)) == pytest.approx(2 / 8)
    rng = np.random.default_rng(5)
    inside = rng.normal(0.0, 0.005, 10_000)  # the 90% interval is well inside (-0.02, 0.02)
    assert S.tost(inside, margin) < 0.05
    lo, hi = S.percentile_interval(inside, 0.90)
    assert -margin < lo and hi < margin
    straddling = rng.normal(0.015, 0.01, 10_000)
    assert S.tost(straddling, margin) > 0.05


def test_mdd_and_needed():
    assert S.mdd(0.01) == pytest.approx((1.959964 + 0.841621) * 0.01, rel=1e-5)
    z = 1.959964 + 0.841621
    # seed part 0.0001, video part 0.0001, 5 seeds; target variance (0.04/z)^2 ~ 0.000204
    seeds, videos = S.needed(0.0002, 0.0001, 5, 31, 0.04)
    target = (0.04 / z) ** 2
    assert seeds == math.ceil(5 * 0.0001 / (target - 0.0001))
    assert videos == math.ceil(31 * 0.0002 / target)
    assert S.needed(0.0002, 0.0003, 5, 31, 0.01)[0] == math.inf  # the test set alone is too noisy


def test_verdict_rule():
    assert S.decide(-0.03, -0.05, -0.01, 0.01, 0.9, "mae") == "better"
    assert S.decide(0.03, 0.01, 0.05, 0.01, 0.9, "mae") == "worse"
    assert S.decide(0.03, 0.01, 0.05, 0.01, 0.9, "corr") == "better"
    assert S.decide(0.002, -0.01, 0.012, 0.7, 0.01, "mae") == "equivalent"
    # wide interval, MIAR's point estimate worse: inconclusive, never "worse"
    assert S.decide(0.03, -0.05, 0.11, 0.4, 0.6, "mae") == "inconclusive"
    assert S.decide(0.03, -0.05, 0.11, 0.01, 0.6, "mae") == "inconclusive"  # interval includes 0
    assert S.decide(math.nan, math.nan, math.nan, math.nan, math.nan, "mae") == "inconclusive"


def test_a_noisy_comparison_is_inconclusive_end_to_end():
    rng = np.random.default_rng(6)
    y = rng.normal(size=40)
    video = np.repeat(np.arange(4), 10)
    pair = S.Pair(y + rng.normal(0.1, 1.0, (3, 40)), y + rng.normal(0, 1.0, (3, 40)), y, video)
    d = S.point(pair)["mae"][2]
    lo, hi = S.percentile_interval(S.hierarchical_bootstrap(pair, 2000, 0)["mae"])
    p = S.sign_flip_test(pair)["mae"]
    assert lo < 0 < hi
    assert S.decide(d, lo, hi, p, S.tost(S.hierarchical_bootstrap(pair, 2000, 0)["mae"], 0.02), "mae") == \
        "inconclusive"


def test_pair_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="do not match"):
        S.Pair(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros(3), np.zeros(3, int))


def test_calibration_script_writes_its_record(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "calibrate_stats.py"
    spec = importlib.util.spec_from_file_location("calibrate_stats", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "c.json"
    assert mod.main(["--sims", "3", "--resamples", "100", "--seeds", "4", "--per-video", "5", "--json", str(out)]) == 0
    import json
    data = json.loads(out.read_text())
    assert (data["seeds"], data["utterances_per_video"], data["videos"]) == (4, 5, 31)  # the shape it simulated
    assert set(data["results"]) == set(mod.SCENARIOS)
    assert all(0 <= v <= 1 for r in data["results"].values() for k, v in r.items() if k.endswith(("0.05", "_0")))
