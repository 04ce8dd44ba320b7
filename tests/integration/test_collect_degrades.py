"""``miar collect`` degrades, never collapses: what is incomplete is shown as incomplete and every other table is
written; a table whose records were removed is removed with them.

Records: one smoke run trained once for the module (copied per test), validation-only trials
(``train.evaluate_test=false``, as tuning writes them) and cross-validated fold records written through
:func:`miar.records.write_record` (with digests, as a sweep writes them) on made-up utterances; the real data is
hidden from these tests (``MIAR_DATA`` points at an empty folder) so the made-up ids are checked across seeds only.
"""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faultkit import TINY, main, one_line, snapshot

from miar import config as C
from miar.comparisons import load_predictions
from miar.metrics import compute_all
from miar.records import write_record
from miar.train import fit

VIDEOS = [f"vid{i:02d}" for i in range(10)]
FOLDS = 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """results/ with one complete smoke record and two validation-only trials of another experiment."""
    results = tmp_path_factory.mktemp("degrade") / "results"
    fit(C.load("smoke", overrides=TINY, seed=1111), results / "runs" / "smoke" / "s1111")
    for seed in (1111, 1112):
        cfg = C.load("smoke", overrides=[*TINY, "train.evaluate_test=false", "name=smoke+t0000"], seed=seed)
        fit(cfg, results / "runs" / "smoke+t0000" / f"s{seed}")
    return results


@pytest.fixture
def results(trained, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MIAR_DATA", str(tmp_path / "no-data"))
    shutil.copytree(trained, tmp_path / "results")
    return tmp_path / "results"


def write_folds(results: Path, repeat: int, skip=(), bad: float | None = None) -> None:
    """One repeat of legacy_miar's fold records on made-up utterances (video v in fold v % 5); ``bad``
    replaces the first prediction of fold 0."""
    rng = np.random.default_rng(repeat)
    for fold in sorted(set(range(FOLDS)) - set(skip)):
        ids = [f"{v}_{k}" for i, v in enumerate(VIDEOS) if i % FOLDS == fold for k in (1, 2, 3)]
        y = np.round(np.linspace(-3, 3, len(ids)) + fold / 10, 1)  # the same labels in every repeat
        pred = np.round(y + rng.normal(0, 0.5, len(ids)), 6)
        metrics = {"test": compute_all(pred, y), "valid": {"mae": 0.5}, "n": {"test": len(ids)}}
        if fold == 0 and bad is not None:
            pred[0] = bad
        name, seed = f"legacy_miar+r{repeat}f{fold}", 1111 + repeat
        cfg = C.load("legacy_miar", [f"name={name}", f"data.cv_repeat={repeat}", f"data.cv_fold={fold}"], seed=seed)
        write_record(results / "runs" / name / f"s{seed}", config_yaml=C.dump(cfg), history=[{"epoch": 1}],
                     predictions=[{"id": i, "pred": float(p), "label": float(t)} for i, p, t in zip(ids, pred, y)],
                     env={"wall_time_s": 1.0}, metrics=metrics)


def collected(results: Path) -> str:
    rc, out, err = main(["collect", "--results", results])
    assert rc == 0, err
    return out


def table(results: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(results / "tables" / name, dtype={"repeat": str})


def test_a_cross_fitted_experiment_without_a_complete_repeat_is_shown_as_incomplete(results):
    """No complete repeat: legacy_cv.csv says which folds are missing and every other table is written."""
    write_folds(results, 0, skip=(3,))
    collected(results)
    legacy = table(results, "legacy_cv.csv")
    row = legacy[legacy.experiment == "legacy_miar"].iloc[0]
    assert len(legacy) == 1 and row["repeat"] == "incomplete" and "3 of 5 missing" in row["note"]
    assert math.isnan(row["mae"])
    for name in ("runs.csv", "summary.csv", "comparisons.csv", "mmsa_names.csv"):
        assert (results / "tables" / name).is_file(), name
    summary = json.loads((results / "summary.json").read_text())
    assert summary["legacy_cv"]["legacy_miar"]["n_repeats"] == 0
    assert summary["experiments"]["smoke"]["n_seeds"] == 1
    assert load_predictions(results, "legacy_miar") is None  # comparisons see "not run", no traceback


def test_a_complete_repeat_beside_an_incomplete_one_is_pooled(results):
    """One complete repeat is pooled; the incomplete one is named in the note."""
    write_folds(results, 0)
    write_folds(results, 1, skip=(0,))
    collected(results)
    legacy = table(results, "legacy_cv.csv").set_index("repeat")
    assert list(legacy.index) == ["0", "mean"] and "repeat 1 left out" in legacy.loc["mean", "note"]


def test_validation_only_records_are_collected_without_test_metrics(results):
    """Tuning trials (no test split) are runs.csv rows with empty test metrics, not seeds of a mean."""
    out = collected(results)
    runs = table(results, "runs.csv")
    trials = runs[runs.experiment == "smoke+t0000"]
    assert len(trials) == 2 and trials["test_mae"].isna().all() and trials["valid_mae"].notna().all()
    summary = json.loads((results / "summary.json").read_text())["experiments"]
    assert summary["smoke+t0000"]["n_seeds"] == 0 and summary["smoke+t0000"]["metrics"]["mae"]["mean"] is None
    assert summary["smoke"]["n_seeds"] == 1 and "smoke+t0000: 0 seed(s)" in out


def test_only_validation_only_records_are_collected(results):
    """A results folder of tuning trials alone (``--results results/tune``) collects."""
    shutil.rmtree(results / "runs" / "smoke")
    collected(results)
    assert set(table(results, "runs.csv").experiment) == {"smoke+t0000"}


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_fold_prediction_is_one_line(results, bad):
    """A fold record predicting NaN or inf is refused with one line naming it, and nothing is written."""
    write_folds(results, 0, bad=bad)
    before = snapshot(results)
    rc, _, err = main(["collect", "--results", results])
    one_line(rc, err, "legacy_miar+r0f0", "not a finite number")
    assert snapshot(results) == before


def test_a_table_whose_records_were_removed_is_removed(results):
    """Removing the fold records removes legacy_cv.csv at the next collect; other files in tables/ stay."""
    write_folds(results, 0)
    collected(results)
    assert (results / "tables" / "legacy_cv.csv").is_file()
    (results / "tables" / "notes.txt").write_text("mine\n")
    for d in (results / "runs").glob("legacy_miar+r*"):
        shutil.rmtree(d)
    collected(results)
    assert not (results / "tables" / "legacy_cv.csv").exists()
    assert "legacy_cv" not in json.loads((results / "summary.json").read_text())
    assert (results / "tables" / "notes.txt").read_text() == "mine\n"
