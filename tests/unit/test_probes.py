"""miar.probes on synthetic data whose leak and headroom are known."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from miar import probes as P


def _data(seed=0, videos=40, per=10):
    rng = np.random.default_rng(seed)
    vid = np.repeat(np.arange(videos), per).astype(str)
    y = rng.normal(0, 1.5, videos * per)
    is_train = np.isin(vid, np.arange(videos // 2).astype(str))
    honest = np.c_[y + rng.normal(0, 1.0, y.size), rng.normal(size=(y.size, 3))]  # same strength everywhere
    leaky = np.c_[np.where(is_train, y, 0.0) + rng.normal(0, 0.3, y.size), rng.normal(size=(y.size, 3))]
    return y, vid, is_train, honest, leaky


def test_grouped_folds_keep_videos_whole():
    vid = np.repeat(np.arange(12), 3)
    fold = P.grouped_folds(vid, 4, np.random.default_rng(0))
    for v in range(12):
        assert len(set(fold[vid == v])) == 1
    assert sorted(np.bincount(fold)) == [9, 9, 9, 9]
    with pytest.raises(ValueError, match="groups"):
        P.grouped_folds(np.zeros(5), 2, np.random.default_rng(0))


def test_leakage_separates_a_leaky_feature_from_an_honest_one():
    y, vid, is_train, honest, leaky = _data()
    out = P.leakage({"honest": honest, "leaky": leaky}, y, vid, is_train, resamples=300)
    assert out["leaky"]["train_heldout"]["corr"][0] > 0.9 and out["leaky"]["test"]["corr"][0] < 0.3
    assert out["leaky"]["gap_r"][1] > 0.4  # the interval's low end
    lo, hi = out["honest"]["gap_r"][1:]
    assert lo < 0 < hi
    assert out["honest"]["n_train_videos"] == out["honest"]["n_test_videos"] == 20


def test_headroom_finds_a_complementary_modality_and_not_noise():
    rng = np.random.default_rng(1)
    vid = np.repeat(np.arange(40), 10)
    a, b = rng.normal(size=(2, 400))
    y = a + b
    text = np.c_[a + rng.normal(0, 0.1, 400)]
    out = P.headroom(text, {"useful": np.c_[b], "noise": rng.normal(size=(400, 2))}, y, vid, repeats=1,
                     resamples=300)
    assert out["with"]["useful"]["gain_mae"][1] > 0.2 and out["with"]["useful"]["residual_r"][0] > 0.9
    lo, hi = out["with"]["noise"]["gain_mae"][1:]
    assert lo < 0.02 and abs(out["with"]["noise"]["residual_r"][0]) < 0.2
    assert out["n_videos"] == 40


def test_probe_script_says_one_line_without_data(tmp_path, capsys):
    path = Path(__file__).resolve().parents[2] / "scripts" / "probe_data.py"
    spec = importlib.util.spec_from_file_location("probe_data", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("probe_data:") and "\n" not in err and not (tmp_path / "out").exists()


def _interaction(seed=2, videos=40, per=10):
    rng = np.random.default_rng(seed)
    vid = np.repeat(np.arange(videos), per)
    a, b, c = rng.normal(size=(3, videos * per))
    return vid, a, b, c


def test_the_nonlinear_probe_finds_an_interaction_the_linear_one_cannot():
    """A second modality that matters only through its product with text (y = text x other) is invisible to
    the linear probe (its gain interval covers 0) and found by the RBF kernel ridge (its interval excludes 0),
    on the same folds and the same video resamples."""
    vid, a, b, _ = _interaction()
    y = 1.5 * a * b
    text, other = np.c_[a], np.c_[b]
    lin = P.headroom(text, {"other": other}, y, vid, repeats=1, resamples=300)
    rbf = P.headroom(text, {"other": other}, y, vid, repeats=1, resamples=300, learner="rbf")
    lo, hi = lin["with"]["other"]["gain_mae"][1:]
    assert lo < 0 < hi
    assert rbf["with"]["other"]["gain_mae"][1] > 0.3
    assert rbf["with"]["other"]["text_plus"]["corr"][0] > 0.8 > 0.3 > lin["with"]["other"]["text_plus"]["corr"][0]


def test_the_nonlinear_probe_finds_nothing_in_noise():
    """A second modality of pure noise, beside a text feature that predicts a noisy score: the RBF kernel
    ridge's gain interval covers 0 and its residual r is not above 0 (cross-fitted predictions of pure noise
    lean negative), so what it finds elsewhere is not an artefact of the more flexible model."""
    vid, a, b, c = _interaction(seed=3)
    y = a + 0.5 * np.sin(2 * a) + np.random.default_rng(6).normal(size=a.size)
    noise = np.c_[b, c]
    out = P.headroom(np.c_[a], {"noise": noise}, y, vid, repeats=1, resamples=300, learner="rbf")
    lo, hi = out["with"]["noise"]["gain_mae"][1:]
    assert lo < 0 < hi
    assert out["with"]["noise"]["residual_r"][1] < 0 and out["with"]["noise"]["residual_r"][0] < 0.1


def test_learners_share_folds_and_the_linear_probe_is_unchanged():
    """The learner argument changes only the read-out: ridge through ``cross_fit(learner='ridge')`` gives the
    same numbers as before the argument existed (ridge_predict fold by fold), and an unknown learner is an
    error naming it."""
    vid, a, b, _ = _interaction(seed=4, videos=12, per=5)
    x, y = np.c_[a, b], a + b
    fold = P.grouped_folds(vid, 5, np.random.default_rng(0))
    by_hand = np.zeros(len(y))
    for f in range(5):
        t = fold == f
        by_hand[t] = P.ridge_predict(x[~t], y[~t], x[t])
    assert np.array_equal(P.cross_fit(x, y, vid, 5, 1, 0), by_hand)
    with pytest.raises(ValueError, match="'gbm'"):
        P.cross_fit(x, y, vid, learner="gbm")


def test_the_kernel_probe_gives_the_added_modality_its_chosen_share():
    """With two blocks the kernel can weigh a 1-column modality as much as a 50-column one (a target carried
    by the single column is found beside 50 noise columns almost as well as alone, far better than with all
    columns pooled), and can ignore it (share 0: the same predictions as the first block alone) when it
    only adds noise; blocks that do not add up to the columns are refused."""
    rng = np.random.default_rng(5)
    vid = np.repeat(np.arange(30), 10)
    s, n = rng.normal(size=(2, 300))
    wide = rng.normal(size=(300, 50))
    y = np.sin(2 * s)
    tr, te = vid < 24, vid >= 24
    x = np.c_[wide, s]
    alone = P.rbf_ridge_predict(np.c_[s][tr], y[tr], np.c_[s][te], vid[tr])
    shared = P.rbf_ridge_predict(np.c_[s, wide][tr], y[tr], np.c_[s, wide][te], vid[tr], blocks=(1, 50))
    both = P.rbf_ridge_predict(np.c_[wide, s][tr], y[tr], np.c_[wide, s][te], vid[tr], blocks=(50, 1))
    pooled = P.rbf_ridge_predict(x[tr], y[tr], x[te], vid[tr])
    r = [np.corrcoef(p, y[te])[0, 1] for p in (alone, shared, both, pooled)]
    assert r[0] > 0.9 and r[1] > 0.9 and r[2] > 0.6 and r[2] > r[3] + 0.3
    quiet = P.rbf_ridge_predict(np.c_[s, n][tr], y[tr], np.c_[s, n][te], vid[tr], blocks=(1, 1))
    np.testing.assert_allclose(quiet, alone)
    with pytest.raises(ValueError, match="blocks"):
        P.rbf_ridge_predict(x[tr], y[tr], x[te], vid[tr], blocks=(50, 2))
