"""The cross-validated primary study's analyses (miar.crossval): the A/A calibration, the interval it chooses, the
sensitivity analysis without the standard split's validation videos, the deciding comparison chosen by validation
MAE, and what miar collect writes for all_cv fold records (tables/cv.csv and the rest)."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miar import comparisons as K
from miar import config as C
from miar import crossval as X
from miar import stats as S
from miar.data.cv import ALL_SALT, fold_of
from miar.metrics import METRICS, compute_all
from miar.records import Predictions, write_record

DESIGN = X.design()
VIDEOS = [f"vid{i:02d}" for i in range(40)] + DESIGN["std_valid_videos"]
SETTINGS = K.Settings(alpha=0.05, power=0.8, resamples=300, seed=0, margins=dict.fromkeys(METRICS, 0.02),
                      why=dict.fromkeys(METRICS, ""))


def _pair(rng, s=4, v=30, per=4, shift=0.0):
    video = np.repeat(np.arange(v), per)
    y = rng.uniform(-3, 3, v * per)
    return S.Pair(y + shift + rng.normal(0, 1, (s, v * per)), y + rng.normal(0, 1, (s, v * per)), y, video)


def test_the_mae_fast_path_draws_what_miar_stats_draws():
    """The A/A check's MAE-only statistics equal miar.stats's bootstraps and permutation p for the same seed."""
    pair = _pair(np.random.default_rng(1), shift=0.1)
    d = np.stack([np.bincount(pair.video, weights=r) for r in np.abs(pair.a - pair.y) - np.abs(pair.b - pair.y)])
    fast = X.mae_distributions(d, np.bincount(pair.video).astype(float), 2500, seed=7)
    np.testing.assert_allclose(fast["video"], S.video_bootstrap(pair, 2500, 7)["mae"], atol=1e-12)
    np.testing.assert_allclose(fast["two_stage"], S.hierarchical_bootstrap(pair, 2500, 7)["mae"], atol=1e-12)
    assert fast["p"][0] == pytest.approx(S.sign_flip_test(pair, 2500, 7)["mae"])


def _preds(name, pair, ids, repeats):
    return Predictions(name, tuple(ids), pair, np.zeros(len(ids)), pairing=tuple(repeats))


def test_an_a_a_check_fires_on_a_real_difference_and_not_on_identical_models():
    """A copy that predicts exactly as the model never fires. A copy 0.5 worse everywhere lands on either side at
    random in each A/A draw, a repeat-level effect: the video bootstrap, which holds the repeats fixed, fires on
    nearly every draw; the two-stage one, which resamples repeats, rarely: what the check is there to see."""
    rng = np.random.default_rng(2)
    ids = [f"v{v}_{k}" for v in range(20) for k in range(3)]
    p = rng.normal(0, 1, (5, len(ids)))
    same = X.aa_fired(_preds("a", p, ids, range(5)), _preds("b", p.copy(), ids, range(5)), SETTINGS, 20)
    assert same == dict.fromkeys(X.METHODS, 0)
    worse = X.aa_fired(_preds("a", p, ids, range(5)), _preds("b", p + 0.5 * np.sign(p), ids, range(5)), SETTINGS, 20)
    assert worse["video"] >= 18 and worse["two_stage"] <= 6


def test_the_interval_follows_the_a_a_rates():
    """Two-stage when its pooled rate is in the band, else the video bootstrap when that one is, else two-stage
    with the note that neither is calibrated; declared default before any A/A record exists."""
    def rows(h, v):
        return [X._rate_row("both", "two_stage", h, 200, [0.025, 0.075], 10),
                X._rate_row("both", "video", v, 200, [0.025, 0.075], 10)]
    assert X.interval_method(rows(10, 30))[0] == "h"
    assert X.interval_method(rows(2, 9)) == ("v", X.interval_method(rows(2, 9))[1]) and "video" in \
        X.interval_method(rows(2, 9))[1]
    assert "not calibrated" in X.interval_method(rows(0, 40))[1]
    assert X.interval_method([])[0] == "h"
    r = rows(10, 30)[0]
    assert r["rate"] == 0.05 and r["ci_low"] < 0.05 < r["ci_high"] and r["in_band"]


# ----------------------------------------------------------------------------- fold records, collect

def cv_record(results: Path, experiment: str, repeat: int, fold: int, ids, pred, label, valid: float) -> Path:
    seed = (2111 if experiment.endswith("_aa") else 1111) + repeat
    name = f"{experiment}+r{repeat}f{fold}"
    cfg = C.load(experiment, [f"name={name}", f"data.cv_repeat={repeat}", f"data.cv_fold={fold}"], seed=seed)
    d = results / "runs" / name / f"s{seed}"
    write_record(d, config_yaml=C.dump(cfg), history=[{"epoch": 1}], env={"wall_time_s": 1.0},
                 metrics={"test": compute_all(pred, label), "valid": {"mae": valid}, "n": {"test": len(ids)}},
                 predictions=[{"id": i, "pred": float(p), "label": float(t)} for i, p, t in zip(ids, pred, label)])
    return d


def write_cv(results: Path, experiment: str, repeats: int, noise: float, valid: float):
    ids = [f"{v}_{k}" for v in VIDEOS for k in (1, 2)]
    y = np.random.default_rng(0).uniform(-3, 3, len(ids)).round(1)
    for r in range(repeats):
        deal = fold_of(VIDEOS, 5, r, ALL_SALT)
        pred = y + np.random.default_rng([r, len(experiment)]).normal(0, noise, len(y))
        for f in range(5):
            rows = [i for i, u in enumerate(ids) if deal[u.rsplit("_", 1)[0]] == f]
            cv_record(results, experiment, r, f, [ids[i] for i in rows], pred[rows], y[rows], valid)


@pytest.fixture
def cv_results(tmp_path, monkeypatch):
    monkeypatch.setenv("MIAR_DATA", str(tmp_path / "no-data"))  # made-up utterances
    for exp, noise, valid in (("mosi_cv_miar", 0.3, 0.7), ("mosi_cv_text_only", 1.0, 0.6),
                              ("mosi_cv_late_fusion", 0.9, 0.8), ("mosi_cv_text_only_aa", 1.0, 0.6),
                              ("mosi_cv_miar_aa", 0.3, 0.7)):
        write_cv(tmp_path, exp, 3, noise, valid)
    return tmp_path


def test_the_deciding_baseline_is_chosen_by_validation_mae(cv_results):
    """The strongest baseline is the one with the lowest mean validation MAE over its fold records (text-only
    here, although late fusion predicts no better on test), and only its row is marked deciding."""
    assert K.valid_mae(cv_results, "mosi_cv_text_only") == pytest.approx(0.6)
    fams = {"cv_sota": {"what": "x", "pairs": [["mosi_cv_miar", "mosi_cv_text_only"],
                                               ["mosi_cv_miar", "mosi_cv_late_fusion"]],
                        "deciding": ["mosi_cv_miar", {"choose": ["mosi_cv_late_fusion", "mosi_cv_text_only"]}]}}
    df = K.frame(K.comparisons(cv_results, fams, SETTINGS)).set_index(["b", "metric"])
    assert bool(df.loc[("mosi_cv_text_only", "mae"), "deciding"])
    assert not bool(df.loc[("mosi_cv_late_fusion", "mae"), "deciding"])
    assert (df["n_seeds_a"] == 3).all() and (df["n_seeds_a"] == df["n_seeds_b"]).all()


def test_the_sensitivity_analysis_drops_the_standard_validation_videos(cv_results):
    """Without the 10 standard-split validation videos each comparison has 10 fewer videos, and equals the
    comparison computed on predictions from which those utterances were removed."""
    fams = {"f": {"what": "x", "pairs": [["mosi_cv_miar", "mosi_cv_text_only"]]}}
    full = K.frame(K.comparisons(cv_results, fams, SETTINGS)).set_index("metric")
    drop = frozenset(DESIGN["std_valid_videos"])
    less = K.frame(K.comparisons(cv_results, fams, SETTINGS, drop_videos=drop)).set_index("metric")
    assert full.loc["mae", "n_videos"] == len(VIDEOS) and less.loc["mae", "n_videos"] == len(VIDEOS) - 10
    pa, pb = (K._without(K.load_predictions(cv_results, n), drop) for n in ("mosi_cv_miar", "mosi_cv_text_only"))
    assert not any(S.video_of(i) in drop for i in pa.ids)
    diff = np.mean([np.abs(a - pa.labels).mean() - np.abs(b - pb.labels).mean() for a, b in zip(pa.preds, pb.preds)])
    assert less.loc["mae", "diff"] == pytest.approx(diff)


def test_collect_writes_the_cross_validated_tables(cv_results):
    """cv.csv pools each repeat's folds; cv_calibration.csv has each A/A pair's and the pooled rates of every
    method; cv_sensitivity.csv has the cross-validated families on 10 fewer videos; the chosen interval is in
    summary.json; the cross-validated families' rows pair 3 repeats on each side."""
    from miar.study.collect import collect

    summary = collect(cv_results)
    cv = pd.read_csv(cv_results / "tables" / "cv.csv")
    assert set(cv.experiment) == {"mosi_cv_miar", "mosi_cv_text_only", "mosi_cv_late_fusion",
                                  "mosi_cv_text_only_aa", "mosi_cv_miar_aa"}
    assert (cv["n_utterances"] == 2 * len(VIDEOS)).all() and not (cv_results / "tables" / "legacy_cv.csv").exists()
    cal = pd.read_csv(cv_results / "tables" / "cv_calibration.csv")
    assert set(cal.pair) == {"mosi_cv_text_only vs mosi_cv_text_only_aa", "mosi_cv_miar vs mosi_cv_miar_aa", "both"}
    assert set(cal.method) == set(X.METHODS) and (cal.loc[cal.pair == "both", "resamples"] == 400).all()
    assert summary["cv_interval"]["interval"] in ("h", "v")
    sens = pd.read_csv(cv_results / "tables" / "cv_sensitivity.csv")
    assert set(sens.family) <= set(DESIGN["families"]) and (sens.n_videos.dropna() == len(VIDEOS) - 10).all()
    comps = pd.DataFrame(summary["comparisons"])
    sota = comps[(comps.family == "cv_sota") & (comps.verdict != K.NOT_RUN)]
    assert set(sota.b) == {"mosi_cv_text_only", "mosi_cv_late_fusion"} and (sota.n_seeds_a == 3).all()
    assert sota.loc[sota.deciding == True, "b"].unique().tolist() == ["mosi_cv_text_only"]  # noqa: E712
    # what the method page shows, read back from those files
    from miar.report import cv_tables as T

    progress = T.progress_table(cv_results, 10).set_index("Model")
    assert progress.loc["MIAR (ours)", "Repeats"] == "3 of 10" and progress.loc["MulT (ours)", "MAE"] == "-"
    shown = T.comparison_table(cv_results)
    assert len(shown) == len(comps[comps.family.str.startswith("cv_") & (comps.metric == "mae")])
    assert shown["A vs B"].str.endswith("(deciding)").sum() == 1
    assert len(T.calibration_table(cv_results)) == 3 * len(X.METHODS)
    assert len(T.comparison_table(cv_results, sensitivity=True)) == len(shown)


@pytest.mark.realdata
def test_the_declared_validation_videos_are_the_standard_splits(mosi_root):
    """The design lists the standard SDK split's validation fold; it must be the data's."""
    from miar.data.mosi_files import read_mosi

    assert sorted(read_mosi(mosi_root).folds["valid"]) == sorted(DESIGN["std_valid_videos"])


# ----------------------------------------------------------------------------- verdicts

def _comps(cv_repeats: int) -> pd.DataFrame:
    rows = [dict(family="primary_std", a="m", b=b, metric="mae", verdict="inconclusive", n_seeds_a=10,
                 n_seeds_b=10, deciding=float("nan")) for b in ("x", "y")]
    rows += [dict(family="cv_sota", a="mosi_cv_miar", b=b, metric="mae", verdict=v, n_seeds_a=cv_repeats,
                  n_seeds_b=cv_repeats, deciding=b == "mosi_cv_text_only")
             for b, v in (("mosi_cv_text_only", "worse"), ("mosi_cv_mult", "better"))]
    return pd.DataFrame(rows)


def test_a_complete_cross_validated_family_alone_decides_by_its_deciding_row():
    """With every repeat run, the claim's verdict is its cross-validated deciding row's alone (the fixed-split
    rows and the other baselines are reported beside it, not combined)."""
    V = importlib.import_module("miar.report.verdicts")  # the package exports a function of that name

    claim = next(c for c in V.CLAIMS if c.key == "sota")
    rows, interim = V.claim_rows(_comps(DESIGN["data"]["repeats"]), claim)
    assert list(rows["b"]) == ["mosi_cv_text_only"] and interim == []
    assert V.combine(list(rows["verdict"])) == "contradicted"


def test_a_partly_run_cross_validated_family_decides_nothing():
    """With fewer repeats than declared, the fixed-split family decides and the cross-validated one is interim."""
    V = importlib.import_module("miar.report.verdicts")  # the package exports a function of that name

    claim = next(c for c in V.CLAIMS if c.key == "sota")
    rows, interim = V.claim_rows(_comps(DESIGN["data"]["repeats"] - 1), claim)
    assert set(rows["family"]) == {"primary_std"}
    assert any("cv_sota" in line and "interim" in line for line in interim)
