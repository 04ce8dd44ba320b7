"""The legacy table's cross-fitted evaluation: folds inside the 31 bc test videos (miar.data.cv, split
bc_test_cv), the sweep `legacy`, and pooling the folds' predictions (miar.pooled, miar collect, legacy_cv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miar import comparisons as K
from miar import config as C
from miar import pooled as P
from miar.data.cv import cv_parts, fold_of
from miar.metrics import METRICS, compute_all
from miar.records import write_record
from miar.study.plan import load_sweep

MODELS = ("miar", "text_only", "early_fusion", "late_fusion", "bclstm", "mult", "misa")
VIDEOS = [f"vid{i:02d}" for i in range(31)]  # as many as the bc test part
SETTINGS = K.Settings(alpha=0.05, power=0.8, resamples=200, seed=0, margins=dict.fromkeys(METRICS, 0.5),
                      why=dict.fromkeys(METRICS, ""))


# ----------------------------------------------------------------------------- folds


@pytest.mark.parametrize("repeat", [0, 1, 2])
def test_folds_partition_the_videos_by_repeat_only(repeat):
    folds = fold_of(VIDEOS, 5, repeat)
    assert set(folds) == set(VIDEOS) and set(folds.values()) == set(range(5))
    sizes = np.bincount(list(folds.values()))
    assert sizes.max() - sizes.min() <= 1  # 7, 6, 6, 6, 6
    assert fold_of(list(reversed(VIDEOS)) * 2, 5, repeat) == folds  # deterministic, order and duplicates ignored
    assert fold_of(VIDEOS, 5, repeat + 1) != folds  # another repeat deals the videos differently


@pytest.mark.parametrize("repeat, fold", [(0, 0), (1, 3), (2, 4)])
def test_parts_of_a_fold(repeat, fold):
    parts = cv_parts(VIDEOS, 5, fold, repeat, n_valid=5)
    train, valid, test = (set(parts[k]) for k in ("train", "valid", "test"))
    assert not (train & valid) and not (train & test) and not (valid & test)  # no video in two parts
    assert train | valid | test == set(VIDEOS)
    folds = fold_of(VIDEOS, 5, repeat)
    assert test == {v for v in VIDEOS if folds[v] == fold}  # the test part is the fold
    assert len(valid) == 5 and all(folds[v] != fold for v in valid)  # validation from the training folds
    assert parts == cv_parts(VIDEOS, 5, fold, repeat, n_valid=5)  # deterministic
    assert cv_parts(VIDEOS, 5, fold, repeat, n_valid=5, valid_seed=1)["test"] == parts["test"]


def test_every_fold_is_a_test_part_once():
    tests = [cv_parts(VIDEOS, 5, f, 0, n_valid=5)["test"] for f in range(5)]
    assert sorted(v for t in tests for v in t) == VIDEOS


def test_legacy_experiments_share_one_data_section():
    """The split depends on the data section only, and every model's is the same: comparisons are paired."""
    sections = {m: C.to_dict(C.load(f"legacy_{m}", ["data.cv_fold=2", "data.cv_repeat=1"]))["data"] for m in MODELS}
    assert all(s == sections["miar"] for s in sections.values())
    assert sections["miar"]["split"] == "bc_test_cv" and sections["miar"]["text_features"] == "cnn"
    assert {C.load(f"legacy_{m}").model.name for m in MODELS} == set(MODELS)


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("overrides, match", [
    (["data.cv_fold=5"], r"data\.cv_fold: 5 must be <= 4"),
    (["data.cv_fold=-1"], r"data\.cv_fold: -1 must be >= 0"),
    (["data.cv_folds=3", "data.cv_fold=3"], r"data\.cv_fold: 3 must be <= 2"),
    (["data.cv_folds=1"], r"data\.cv_folds: 1 must be >= 2"),
    (["data.cv_repeat=-2"], r"data\.cv_repeat"),
    (["data.n_valid_videos=24"], r"data\.n_valid_videos: 24 must be <= 23"),
    (["data.split=bc", "data.cv_fold=2"], r"data\.cv_fold: 2 is only used with data\.split=bc_test_cv"),
    (["data.source=synthetic"], r"bc_test_cv needs data\.source=mosi"),
])
def test_config_errors_are_one_line(overrides, match):
    with pytest.raises(C.ConfigError, match=match) as e:
        C.load("legacy_miar", overrides)
    assert "\n" not in str(e.value)


def test_other_text_features_are_allowed():
    """Inside the bc test videos every text feature is honest (the leak-free encoders too), so bc_test_cv
    takes any of them; only the standard split refuses the released features."""
    assert C.load("legacy_miar", ["data.text_features=mpnet"]).data.text_features == "mpnet"


def test_cv_keys_leave_earlier_configs_byte_identical():
    text = C.dump(C.load("mosi_bc_miar"))
    assert "cv_" not in text and "split: bc\n" in text
    assert "cv_fold" not in C.dump(C.load("legacy_miar"))  # fold 0 of repeat 0: the keys at their defaults


def test_the_legacy_sweep_is_the_full_grid():
    _, runs = load_sweep("legacy")
    assert len(runs) == len(MODELS) * 5 * 3
    grid = set()
    for r in runs:
        d = C.load(r.experiment, list(r.overrides), seed=r.seed).data
        assert r.display == f"{r.experiment}+r{d.cv_repeat}f{d.cv_fold}" and r.seed == 1111 + d.cv_repeat
        grid.add((r.experiment, d.cv_repeat, d.cv_fold))
    assert grid == {(f"legacy_{m}", rep, f) for m in MODELS for rep in range(3) for f in range(5)}
    assert [r.display.split("+r")[1][0] for r in runs] == sorted(r.display.split("+r")[1][0] for r in runs)


# ----------------------------------------------------------------------------- pooling


def fold_record(results: Path, model: str, repeat: int, fold: int, ids, pred, label, seed=None) -> Path:
    """A complete, sane run record of one fold, as the sweep writes it (config from the experiment)."""
    name = f"legacy_{model}+r{repeat}f{fold}"
    seed = 1111 + repeat if seed is None else seed
    cfg = C.load(f"legacy_{model}", [f"name={name}", f"data.cv_repeat={repeat}", f"data.cv_fold={fold}"], seed=seed)
    d = results / "runs" / name / f"s{seed}"
    assert not d.exists()
    write_record(d, config_yaml=C.dump(cfg), history=[{"epoch": 1}], env={"wall_time_s": 2.5},
                 metrics={"test": compute_all(pred, label), "valid": {"mae": 0.5}, "n": {"test": len(ids)}},
                 predictions=[{"id": i, "pred": float(p), "label": float(t)} for i, p, t in zip(ids, pred, label)])
    return d


def utterances(n_per_video: int = 3) -> tuple[list[str], np.ndarray]:
    ids = [f"{v}_{k}" for v in VIDEOS for k in range(1, n_per_video + 1)]
    return ids, np.random.default_rng(0).uniform(-3, 3, len(ids)).round(1)


def write_folds(results: Path, model: str, repeat: int, noise: float, skip=(), folds=5):
    ids, y = utterances()
    rng = np.random.default_rng([repeat, len(model)])
    deal = fold_of(VIDEOS, folds, repeat)
    pred = y + rng.normal(0, noise, len(y))
    for f in range(folds):
        if f in skip:
            continue
        rows = [i for i, u in enumerate(ids) if deal[u.rsplit("_", 1)[0]] == f]
        fold_record(results, model, repeat, f, [ids[i] for i in rows], pred[rows], y[rows])
    return ids, y, pred


def test_pooling_gives_one_prediction_per_utterance_per_repeat(tmp_path):
    expected = [write_folds(tmp_path, "miar", r, 0.3) for r in range(3)]
    p = P.pool(tmp_path, "legacy_miar", strict=True)
    ids, y, _ = expected[0]
    assert p.preds.shape == (3, len(ids)) and p.ids == tuple(sorted(ids)) and p.repeats == (0, 1, 2)
    order = np.argsort(ids)
    for r, (_, _, pred) in enumerate(expected):
        np.testing.assert_allclose(p.preds[r], pred[order])  # each utterance's own fold's prediction
    np.testing.assert_allclose(p.labels, y[order])
    assert p.seeds == ((1111,), (1112,), (1113,)) and p.wall_time_s == (12.5,) * 3


def test_a_missing_fold_is_refused(tmp_path):
    write_folds(tmp_path, "miar", 0, 0.3, skip=(3,))
    with pytest.raises(P.PoolError, match=r"legacy_miar repeat 0: fold\(s\) 3 of 5 missing") as e:
        P.pool_repeat(P.fold_runs(tmp_path, "legacy_miar"))
    assert "\n" not in str(e.value)
    with pytest.raises(P.PoolError, match="missing"):
        P.pool(tmp_path, "legacy_miar", strict=True)
    with pytest.raises(P.PoolError, match="no complete repeat"):
        P.pool(tmp_path, "legacy_miar")


def test_an_incomplete_repeat_is_left_out_and_named(tmp_path):
    write_folds(tmp_path, "miar", 0, 0.3)
    write_folds(tmp_path, "miar", 1, 0.3, skip=(0, 4))
    p = P.pool(tmp_path, "legacy_miar")
    assert p.repeats == (0,) and "fold(s) 0, 4 of 5 missing" in p.incomplete[1]
    assert "repeat 1 left out" in P.note(p)


def test_a_duplicated_fold_is_refused(tmp_path):
    ids, y, pred = write_folds(tmp_path, "miar", 0, 0.3)
    first = tmp_path / "runs" / "legacy_miar+r0f2" / "s1111"
    keep = pd.read_csv(first / "predictions.csv", dtype={"id": str})
    fold_record(tmp_path, "miar", 0, 2, keep["id"], keep["pred"], keep["label"], seed=1200)  # a second seed
    with pytest.raises(P.PoolError, match="fold 2 twice") as e:
        P.pool(tmp_path, "legacy_miar")
    assert "\n" not in str(e.value)


def test_overlapping_folds_and_mislabelled_records_are_refused(tmp_path):
    write_folds(tmp_path, "miar", 0, 0.3)
    other = tmp_path / "runs" / "legacy_miar+r0f1" / "s1111" / "predictions.csv"
    f = pd.read_csv(other, dtype={"id": str})
    f.loc[0, "id"] = pd.read_csv(tmp_path / "runs" / "legacy_miar+r0f0" / "s1111" / "predictions.csv",
                                 dtype={"id": str})["id"][0]
    f.to_csv(other, index=False)
    with pytest.raises(P.PoolError, match="predicted by two folds"):
        P.pool(tmp_path, "legacy_miar")
    (tmp_path / "runs" / "legacy_miar+r0f1").rename(tmp_path / "runs" / "legacy_miar+r0f7")
    with pytest.raises(P.PoolError, match="its config is repeat 0 fold 1"):
        P.pool(tmp_path, "legacy_miar")


def test_comparisons_pair_the_pooled_predictions(tmp_path):
    for model, noise in (("miar", 0.2), ("text_only", 1.0)):
        for r in range(3):
            write_folds(tmp_path, model, r, noise)
    pa = K.load_predictions(tmp_path, "legacy_miar")
    assert pa.preds.shape == (3, 31 * 3) and pa.ids == K.load_predictions(tmp_path, "legacy_text_only").ids
    fams = {"legacy_cv": {"what": "x", "pairs": [["legacy_miar", "legacy_text_only"],
                                                  ["legacy_miar", "legacy_mult"]]}}
    df = K.frame(K.comparisons(tmp_path, fams, SETTINGS)).set_index(["b", "metric"])
    row = df.loc[("legacy_text_only", "mae")]
    assert row["n_seeds_a"] == 3 and row["n_videos"] == 31 and row["diff"] < 0 and row["verdict"] == "better"
    assert df.loc[("legacy_mult", "mae"), "verdict"] == K.NOT_RUN  # one side ran: said, not hidden


def test_an_unrun_cross_validated_family_adds_no_rows(tmp_path):
    (tmp_path / "runs").mkdir()
    fams = {"legacy_cv": {"what": "x", "pairs": [["legacy_miar", "legacy_text_only"]]},
            "other": {"what": "x", "pairs": [["mosi_bc_miar", "mosi_bc_mult"]]}}
    df = K.frame(K.comparisons(tmp_path, fams, SETTINGS))
    assert set(df.family) == {"other"} and set(df.verdict) == {K.NOT_RUN}


def test_collect_writes_the_legacy_table(tmp_path, monkeypatch):
    from miar.study.collect import collect

    monkeypatch.setenv("MIAR_DATA", str(tmp_path / "no-data"))  # made-up utterances: checked across seeds only

    for model, noise in (("miar", 0.2), ("text_only", 1.0)):
        for r in range(3):
            write_folds(tmp_path, model, r, noise)
    summary = collect(tmp_path)
    table = pd.read_csv(tmp_path / "tables" / "legacy_cv.csv")
    miar = table[table.experiment == "legacy_miar"].set_index("repeat")
    assert list(miar.index) == ["0", "1", "2", "mean"] and (miar["n_utterances"] == 93).all()
    assert miar.loc["mean", "mae"] == pytest.approx(miar.loc[["0", "1", "2"], "mae"].astype(float).mean())
    assert summary["legacy_cv"]["legacy_miar"]["n_repeats"] == 3
    legacy = [c for c in summary["comparisons"] if c["family"] == "legacy_cv"]
    assert {c["b"] for c in legacy} == {"legacy_text_only", "legacy_early_fusion", "legacy_late_fusion",
                                        "legacy_bclstm", "legacy_mult", "legacy_misa"}
    assert "legacy_miar+r0f0" in summary["experiments"]  # each fold record is still a run of its own
    # what the book reads: the pooled table (repeats as seeds), counted as planned, the fold records not
    from miar import report as R

    legacy = R.load_legacy(tmp_path)
    assert legacy["legacy_miar"]["n_seeds"] == 3
    assert legacy["legacy_miar"]["metrics"]["mae"]["mean"] == pytest.approx(float(miar.loc["mean", "mae"]))
    status = R.status_table(R.load_summary(tmp_path), legacy).set_index("Experiments")
    assert status.loc["legacy features (cross-fitted in the bc test videos)", "With results"] == "2 of 7"
    assert status.loc["legacy features (cross-fitted in the bc test videos)", "Seeds each"] == "3"  # repeats
    assert "others in the results" not in status.index  # 30 fold records, none counted as an experiment


# ----------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_folds_cover_the_752_test_utterances(mosi_root):
    from miar.data import build_splits
    from miar.data.batch import apply_zscore, zscore_stats
    from miar.data.mosi import BC_SIZES

    for repeat in range(3):
        seen: list[str] = []
        for fold in range(5):
            splits = build_splits(C.load("legacy_miar", [f"data.path={mosi_root}", f"data.cv_fold={fold}",
                                                         f"data.cv_repeat={repeat}"]))
            ids = {k: set(v.ids) for k, v in splits.items()}
            vids = {k: set(v.meta["videos"]) for k, v in splits.items()}
            assert not (ids["train"] | ids["valid"]) & ids["test"]  # training never sees a test utterance
            assert not (vids["train"] & vids["valid"]) and not (vids["train"] | vids["valid"]) & vids["test"]
            assert len(vids["valid"]) == 5 and 4 <= len(vids["test"]) <= 7
            assert len(vids["train"] | vids["valid"] | vids["test"]) == 31
            seen += splits["test"].ids
        raw = build_splits(C.load("legacy_miar", [f"data.path={mosi_root}", "data.cv_fold=4",
                                                  f"data.cv_repeat={repeat}", "data.standardize=false"]))
        for m in ("text", "audio", "vision"):  # z-scored with the training fold's statistics (not valid's, test's)
            mu, sd = zscore_stats(raw["train"].x[m][:, 4].numpy())  # (d,) over the centre steps
            np.testing.assert_allclose(splits["test"].x[m][:, 4].numpy(),
                                       apply_zscore(raw["test"].x[m][:, 4].numpy(), mu, sd), atol=1e-5)
        assert len(seen) == len(set(seen)) == BC_SIZES[1]  # the folds pool to exactly the 752 test utterances


@pytest.mark.realdata
def test_real_splits_are_the_same_for_every_model(mosi_root):
    from miar.data import build_splits

    def parts(model):
        cfg = C.load(f"legacy_{model}", [f"data.path={mosi_root}", "data.cv_fold=1", "data.cv_repeat=2"])
        return {k: v.ids for k, v in build_splits(cfg).items()}

    assert parts("miar") == parts("mult") == parts("text_only")
