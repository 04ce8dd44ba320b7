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
