"""The cross-validated primary study's design (miar/experiments/designs/all_cv.yaml) and its split ``all_cv``: folds
of whole videos over all 93 MOSI videos, the same for every model, and a sweep that is exactly the declared grid."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from miar import config as C
from miar.data.cv import ALL_SALT, FOLD_SALT, cv_parts, fold_of

ROOT = Path(__file__).resolve().parents[2]
DESIGN = yaml.safe_load((ROOT / "miar/experiments/designs/all_cv.yaml").read_text())
VIDEOS = [f"vid{i:02d}" for i in range(93)]


def _generator():
    spec = importlib.util.spec_from_file_location("make_cv_sweep", ROOT / "scripts/make_cv_sweep.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("repeat", [0, 1, 9])
def test_every_video_is_a_test_video_once_per_repeat(repeat):
    parts = [cv_parts(VIDEOS, 5, f, repeat, n_valid=10, salt=ALL_SALT) for f in range(5)]
    tests = [p["test"] for p in parts]
    assert sorted(v for t in tests for v in t) == VIDEOS
    assert {len(t) for t in tests} == {18, 19}
    for p in parts:
        assert len(p["valid"]) == 10 and not set(p["valid"]) & set(p["test"])
        assert sorted(p["train"] + p["valid"] + p["test"]) == VIDEOS


def test_the_deal_is_its_own_and_depends_on_the_repeat_only():
    assert fold_of(VIDEOS, 5, 0, ALL_SALT) != fold_of(VIDEOS, 5, 0, FOLD_SALT)
    assert fold_of(VIDEOS, 5, 0, ALL_SALT) != fold_of(VIDEOS, 5, 1, ALL_SALT)
    assert cv_parts(VIDEOS, 5, 2, 3, 10, salt=ALL_SALT) == cv_parts(list(reversed(VIDEOS)), 5, 2, 3, 10, salt=ALL_SALT)


def test_the_committed_sweep_is_the_declared_design():
    gen = _generator()
    assert (ROOT / "miar/experiments/sweeps/cv.yaml").read_text() == gen.text(DESIGN), \
        "sweeps/cv.yaml is stale: python scripts/make_cv_sweep.py"
    runs = gen.sweep(DESIGN)["runs"]
    d = DESIGN["data"]
    experiments = [*DESIGN["models"], *DESIGN["ablations"], *DESIGN["calibration"]]
    assert len(runs) == DESIGN["runs"] == len(experiments) * d["folds"] * d["repeats"]
    for r in runs:
        rep = int(r["variant"][1:].split("f")[0])
        assert r["seeds"] == [(2111 if r["experiment"] in DESIGN["calibration"] else 1111) + rep]
        assert r["overrides"][:2] == [f"data.cv_repeat={rep}", f"data.cv_fold={r['variant'].split('f')[1]}"]
    deltas = {r["experiment"]: r["overrides"][2:] for r in runs}
    assert deltas["mosi_cv_miar_nocontrastive"] == ["loss.weight=0"]  # after the tuned values: the delta wins
    assert deltas["mosi_cv_miar_nointeraction"] == ["model.interaction=false"]
    assert [r["variant"] for r in runs[:3]] == ["r0f0", "r0f1", "r0f2"] and runs[-1]["variant"] == "r9f4"


@pytest.mark.parametrize("experiment", [*DESIGN["models"], *DESIGN["ablations"], *DESIGN["calibration"]])
def test_each_declared_experiment_is_the_leak_free_primary_setting(experiment):
    cfg = C.load(experiment)
    d = DESIGN["data"]
    assert cfg.data.split == "all_cv" and list(cfg.data.modalities) == d["modalities"]
    assert cfg.data.text_features == d["text_features"] and cfg.data.context == d["context"]
    assert cfg.data.n_valid_videos == d["n_valid_videos"] and cfg.data.cv_folds == d["folds"]


@pytest.mark.parametrize("overrides, match", [
    (["data.cv_folds=47"], r"data\.cv_folds: 47 must be <= 46"),
    (["data.cv_fold=5"], r"data\.cv_fold: 5 must be <= 4"),
    (["data.n_valid_videos=74"], r"data\.n_valid_videos: 74 must be <= 73"),
    (["data.source=synthetic"], r"all_cv needs data\.source=mosi"),
])
def test_all_cv_config_errors_are_one_line(overrides, match):
    with pytest.raises(C.ConfigError, match=match) as e:
        C.load("mosi_cv_miar", overrides)
    assert "\n" not in str(e.value)


@pytest.mark.realdata
def test_all_cv_on_mosi_covers_every_utterance_and_refuses_leaky_features(mosi_root):
    from miar.data import DataError
    from miar.data.mosi import load_mosi
    n = 0
    for fold in range(5):
        parts = load_mosi(mosi_root, split="all_cv", modalities=("audio",), context=0, cv=(5, fold, 0))
        vids = {p: {i.rsplit("_", 1)[0] for i in ds.ids} for p, ds in parts.items()}
        assert not (vids["train"] & vids["test"]) and not (vids["valid"] & vids["test"]) and len(vids["valid"]) == 10
        n += len(parts["test"])
    assert n == 2199
    for kw in ({"modalities": ("text", "audio"), "text_features": "cnn"}, {"modalities": ("audio", "vision")}):
        with pytest.raises(DataError, match="split='all_cv' refuses the released"):
            load_mosi(mosi_root, split="all_cv", **kw)
