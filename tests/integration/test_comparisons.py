"""miar.comparisons: the declared families and margins, predictions read from run records, comparisons.csv."""

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from miar import comparisons as K
from miar.metrics import METRICS

REPO = Path(__file__).resolve().parents[2]


def _record(results: Path, experiment: str, seed: int, pred, label, ids, valid_mae=0.5, predictions=True):
    d = results / "runs" / experiment / f"s{seed}"
    d.mkdir(parents=True)
    for f, text in (("config.yaml", f"seed: {seed}\n"), ("history.csv", "epoch\n1\n"), ("env.json", "{}\n")):
        (d / f).write_text(text)
    (d / "metrics.json").write_text(json.dumps({"test": {"mae": 1.0}, "valid": {"mae": valid_mae}}))
    if predictions:
        rows = "\n".join(f"{i},{p},{y}" for i, p, y in zip(ids, pred, label))
        (d / "predictions.csv").write_text("id,pred,label\n" + rows + "\n")
    return d


@pytest.fixture
def fake(tmp_path):
    """Three experiments on one test set of 8 videos: 'good' close to the labels, 'bad' far, 'twin' = good."""
    rng = np.random.default_rng(0)
    ids = [f"vid{v}_{k}" for v in range(8) for k in range(1, 6)]
    y = rng.uniform(-3, 3, len(ids))
    for s in range(3):
        _record(tmp_path, "good", 1111 + s, y + rng.normal(0, 0.2, len(ids)), y, ids, valid_mae=0.3)
        _record(tmp_path, "bad", 1111 + s, y + rng.normal(0, 1.5, len(ids)), y, ids, valid_mae=0.9)
        _record(tmp_path, "twin", 1111 + s, y + rng.normal(0, 0.2, len(ids)), y, ids, valid_mae=0.4)
    return tmp_path, ids, y


SETTINGS = K.Settings(alpha=0.05, power=0.8, resamples=500, seed=0, margins=dict.fromkeys(METRICS, 0.5),
                      why=dict.fromkeys(METRICS, ""))


def test_shipped_margins_and_families_are_valid_and_documented():
    st = K.load_settings()
    assert st.margins["mae"] == 0.02 and st.margins["corr"] == 0.02 and st.margins["non0_acc2"] == 0.01
    assert all(st.why[m] for m in METRICS), "every margin carries its argument"
    fams = K.load_families()
    assert {"primary_std", "primary_bc", "components_std", "inferred_std", "textgen_std", "legacy_cv"} <= set(fams)
    assert ["mosi_std_miar+tuned", "mosi_std_miar+tuned.no_contrastive"] in fams["components_std"]["pairs"]


@pytest.mark.parametrize("text, match", [
    ("alpha: 0.05\npower: 0.8\nresamples: 1000\nseed: 0\nmargins: {mae: 0.02}\n", "exactly the metrics"),
    ("alpha: 0.05\npower: 0.8\nresamples: 1000\nseed: 0\nmargin: {}\n", "keys must be"),
    ("alpha: 2\npower: 0.8\nresamples: 1000\nseed: 0\nmargins: {" + ", ".join(f"{m}: 0.1" for m in METRICS)
     + "}\n", "alpha"),
    ("[1, 2", "cannot read"),
])
def test_bad_margins_file_is_one_line_error(tmp_path, text, match):
    p = tmp_path / "margins.yaml"
    p.write_text(text)
    with pytest.raises(K.ComparisonError, match=match) as e:
        K.load_settings(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_bad_families_file_is_one_line_error(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("families:\n  f:\n    what: x\n    pairs: [[a, b, c]]\n")
    with pytest.raises(K.ComparisonError, match="not \\[A, B\\]"):
        K.load_families(p)
    p.write_text("families:\n  f:\n    what: x\n    pairs: [[a, {pick: [b]}]]\n")
    with pytest.raises(K.ComparisonError):
        K.load_families(p)


def test_comparisons_of_a_fake_results_folder(fake):
    results, _, _ = fake
    fams = {"f": {"what": "x", "pairs": [["good", "bad"], ["good", "twin"], ["good", "missing"]]}}
    rows = K.comparisons(results, fams, SETTINGS)
    df = K.frame(rows)
    assert list(df.columns) == list(K.COLUMNS)
    assert len(df) == 3 * len(METRICS)
    mae = df[df.metric == "mae"].set_index("b")
    assert mae.loc["bad", "diff"] < 0 and mae.loc["bad", "ci_high_h"] < 0
    assert mae.loc["bad", "verdict"] == "better"
    assert mae.loc["twin", "verdict"] == "equivalent"  # within the (wide) test margin of 0.5
    assert mae.loc["missing", "verdict"] == K.NOT_RUN and "missing" in mae.loc["missing", "note"]
    assert mae.loc["bad", "n_seeds_a"] == 3 and mae.loc["bad", "n_videos"] == 8
    # Holm over the two comparisons that ran: the adjusted p is never below the raw one
    ran = mae[mae.verdict != K.NOT_RUN]
    assert (ran["p_holm"] >= ran["p_perm"] - 1e-12).all()
    assert np.isfinite(ran[["mdd80", "se_h", "ci_low", "ci_high"]].to_numpy(float)).all()


def test_choose_uses_validation_only(fake):
    results, _, _ = fake
    assert K.resolve(results, {"choose": ["bad", "twin"]}) == "twin"  # lower validation MAE
    assert K.resolve(results, {"choose": ["nothing", "other"]}) == "nothing"  # none ran: the first listed


def test_runs_without_predictions_are_left_out_and_said(fake):
    results, ids, y = fake
    _record(results, "good", 1200, y, y, ids, predictions=False)
    (results / "runs" / "good" / "s1200" / "predictions.csv").write_text("id,pred\n")  # complete, unusable
    p = K.load_predictions(results, "good")
    assert p.preds.shape == (3, len(ids)) and p.left_out == 1
    rows = K.comparisons(results, {"f": {"what": "x", "pairs": [["good", "bad"]]}}, SETTINGS)
    assert "1 run(s) of good without predictions.csv left out" in rows[0]["note"]


def test_different_test_sets_cannot_be_compared(fake):
    results, ids, y = fake
    _record(results, "other", 1111, y, y, [i.replace("vid", "w") for i in ids])
    with pytest.raises(K.ComparisonError, match="different utterances"):
        K.comparisons(results, {"f": {"what": "x", "pairs": [["good", "other"]]}}, SETTINGS)


def test_margins_history_is_in_git():
    """A margin changed after seeing results must show in git history: the file is tracked."""
    out = subprocess.run(["git", "log", "--format=%h", "--", "miar/experiments/margins.yaml"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    assert out.stdout.strip(), "margins.yaml is committed"
    assert not math.isnan(K.load_settings().margins["mae"])


def test_book_sentences_read_the_declared_settings():
    from miar import report as R

    st = K.load_settings()
    assert f"{st.resamples:,} resamples" in R.settings_sentence() and f"seed {st.seed}" in R.settings_sentence()


def test_unequal_seed_sets_are_compared_on_their_intersection(fake):
    """A side with seeds the other lacks is reduced to the common seeds; n_seeds_a == n_seeds_b counts the
    seeds used, the note says so, and diff is the mean over those seeds of per-seed metric differences."""
    from miar.metrics import compute_all

    results, ids, y = fake
    rng = np.random.default_rng(5)
    short = {s: y + rng.normal(0, 0.6, len(ids)) for s in (1112, 1113, 1300)}
    for s, p in short.items():
        _record(results, "short", s, p, y, ids)
    df = K.frame(K.comparisons(results, {"f": {"what": "x", "pairs": [["good", "short"]]}}, SETTINGS))
    assert (df["n_seeds_a"] == 2).all() and (df["n_seeds_b"] == 2).all()
    assert (df["estimand"] == K.ESTIMAND).all()
    row = df[df.metric == "mae"].iloc[0]
    assert "intersection rule" in row["note"] and "good 3" in row["note"] and "short 3" in row["note"]
    good = K.load_predictions(results, "good")
    want = np.mean([compute_all(good.preds[good.pairing.index(s)], y)["mae"] - compute_all(short[s], y)["mae"]
                    for s in (1112, 1113)])
    assert row["diff"] == pytest.approx(want, abs=1e-12)


def test_no_seed_in_common_is_not_compared_and_a_repeated_seed_is_refused(fake):
    """Disjoint seed sets give "not run" rows saying why; one seed twice in an experiment cannot be paired."""
    results, ids, y = fake
    _record(results, "later", 1400, y, y, ids)
    rows = K.comparisons(results, {"f": {"what": "x", "pairs": [["good", "later"], ["good", "bad"]]}}, SETTINGS)
    later = [r for r in rows if r["b"] == "later"]
    assert all(r["verdict"] == K.NOT_RUN and "no seed in common" in r["note"] for r in later)
    assert all(r["n_seeds_a"] == r["n_seeds_b"] for r in rows)
    copy = results / "runs" / "bad" / "s9999"
    copy.mkdir()
    for f in (results / "runs" / "bad" / "s1111").iterdir():
        copy.joinpath(f.name).write_bytes(f.read_bytes())  # a copied run: seed 1111 twice
    with pytest.raises(K.ComparisonError, match="not one distinct seed per run") as e:
        K.comparisons(results, {"f": {"what": "x", "pairs": [["good", "bad"]]}}, SETTINGS)
    assert "\n" not in str(e.value)


def test_families_that_share_a_holm_set_are_corrected_together(fake):
    """Two families naming one Holm set get Holm's adjustment over both families' comparisons together."""
    results, _, _ = fake
    apart = {"f": {"what": "x", "pairs": [["good", "bad"]]}, "g": {"what": "y", "pairs": [["good", "twin"]]}}
    together = {k: {**v, "holm": "claim"} for k, v in apart.items()}
    a, t = (K.frame(K.comparisons(results, fams, SETTINGS)) for fams in (apart, together))
    a, t = a[a.metric == "mae"], t[t.metric == "mae"]
    assert (a["p_holm"].to_numpy() == a["p_perm"].to_numpy()).all()  # one comparison per set: no adjustment
    from miar.stats import holm

    assert t["p_holm"].to_numpy() == pytest.approx(holm(t["p_perm"].to_numpy()))


def test_a_bad_holm_name_is_one_line_error(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("families:\n  f:\n    what: x\n    pairs: [[a, b]]\n    holm: [x]\n")
    with pytest.raises(K.ComparisonError, match="holm") as e:
        K.load_families(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)
