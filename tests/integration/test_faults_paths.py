"""Issue 12, class 1: paths built from user input stay inside their root (miar.paths), refused in one line
before any file is touched: sweep experiments and variants, a config's name (``miar train``'s default run
directory), ``miar align``'s experiments."""

import json
from pathlib import Path

import pytest
from faultkit import TINY, main, one_line, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from miar import config as C
from miar.paths import UnsafePath, component, inside

HOSTILE = ["../outside", "../../sentinel", "..", ".", "a/b", "/abs", ".hidden", "x/../../y", "",
           "a\\..\\b", "name\0nul", "a" * 201]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_inside_never_leaves_its_root(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "root"
    try:
        path = inside(root, name, "s1")
    except UnsafePath as e:
        assert "\n" not in str(e)
        return
    assert root.resolve() in path.resolve().parents and "/" not in name and not name.startswith(".")


@pytest.mark.parametrize("name", HOSTILE)
def test_component_refuses_hostile_names(name):
    with pytest.raises(UnsafePath):
        component(name, "experiment")


def test_inside_refuses_a_symlink_pointing_out(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="outside"):
        inside(tmp_path / "root", "link", "x")


def _sweep(path: Path, entry: dict) -> Path:
    path.write_text(json.dumps({"notebook": "train.ipynb", "seeds": [1],
                                "runs": [{"experiment": "smoke", "overrides": TINY, **entry}]}))
    return path


ESCAPES = [  # (sweep entry, where results/runs/<display>/s1 would resolve, relative to the test directory)
    ({"experiment": "../../miar/experiments/smoke"}, "miar/experiments/smoke/s1"),  # resolves to smoke.yaml
    ({"experiment": "../../../sentinel"}, "../sentinel/s1"),
    ({"experiment": "../outside"}, "results/outside/s1"),
    ({"experiment": "x/../../sentinel"}, "results/sentinel/s1"),
    ({"experiment": "..yaml"}, "results/s1"),
    ({"variant": "a/../../x"}, "results/runs/x/s1"),
]


@pytest.mark.parametrize("entry, target", ESCAPES)
def test_sweep_entry_with_dotdot_touches_nothing_outside_results(tmp_path, monkeypatch, entry, target):
    """The sweep used to clear ``results/runs/../../<x>/s1`` (outside --results) and write its record there."""
    base = tmp_path / "work"
    base.mkdir()
    monkeypatch.chdir(base)
    sentinel = (base / target).resolve()
    sentinel.mkdir(parents=True, exist_ok=True)
    (sentinel / "keep.txt").write_text("precious")
    (base / "results").mkdir(exist_ok=True)
    sweep = _sweep(base / "hostile.yaml", entry)
    before = snapshot(tmp_path)
    rc, _, err = main(["sweep", sweep, "--results", base / "results"])
    one_line(rc, err)
    assert snapshot(tmp_path) == before  # the sentinel survives, nothing written anywhere


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_config_name_is_a_plain_name_or_refused(name):
    """A config's name becomes runs/<name>-s<seed> and DIR/runs/<name>/: it is one plain component or an error."""
    try:
        cfg = C.load("smoke", overrides={"name": name})
    except C.ConfigError as e:
        assert "\n" not in str(e)
        return
    assert inside(Path("runs"), f"{cfg.name}-s{cfg.seed}").parent == Path("runs")


@pytest.mark.parametrize("name", ["../escape", "../../tmp/x", "a/b", ".."])
def test_train_yaml_name_cannot_move_the_default_run_dir(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"name: {json.dumps(name)}\nbase: smoke\n")
    before = snapshot(tmp_path)
    rc, _, err = main(["train", cfg, "--set", "train.epochs=1"])
    one_line(rc, err, "name")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["../escape", "a/b", ".."])
def test_train_set_name_cannot_move_the_default_run_dir(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    rc, _, err = main(["train", "smoke", "--set", f"name={name}"])
    one_line(rc, err, "name")
    assert snapshot(tmp_path) == {".": "dir"}  # tmp_path itself, and nothing in it


@pytest.mark.parametrize("exp", ["../escape", "..", "a/b"])
def test_align_refuses_experiment_names_outside_runs(tmp_path, exp):
    (tmp_path / "results" / "runs").mkdir(parents=True)
    before = snapshot(tmp_path)
    rc, _, err = main(["align", exp, "--results", tmp_path / "results"])
    one_line(rc, err, "experiment")
    assert snapshot(tmp_path) == before


def test_experiment_name_with_a_path_is_not_looked_up_outside_experiments(tmp_path):
    (tmp_path / "evil.yaml").write_text("train:\n  epochs: 1\n")
    with pytest.raises(C.ConfigError, match="not a name"):
        C.load(str(tmp_path.relative_to(tmp_path.anchor)) + "/evil")  # no .yaml: a name, and names have no '/'


NAMEISH = st.lists(st.sampled_from([*"ab./\\_-+=~ \0", "..", "../", "smoke", ".yaml", "miar/experiments/"]),
                   max_size=8).map("".join)


@settings(max_examples=150, deadline=None)
@given(experiment=NAMEISH | st.just("smoke"), variant=st.none() | NAMEISH)
def test_every_planned_run_lies_inside_results(tmp_path_factory, experiment, variant):
    """Whatever a sweep entry names, planning refuses it in one line or every run and notebook path lies below
    results/runs and results/notebooks."""
    from miar.study.plan import load_sweep
    tmp = tmp_path_factory.mktemp("plan")
    entry = {"experiment": experiment, **({"variant": variant} if variant is not None else {})}
    sweep = _sweep(tmp / "s.yaml", entry)
    try:
        _, runs = load_sweep(str(sweep))
    except C.ConfigError as e:
        assert "\n" not in str(e)
        return
    results = (tmp / "results").resolve()
    for r in runs:
        assert results / "runs" in r.run_dir(tmp / "results").resolve().parents
        assert results / "notebooks" in r.notebook_path(tmp / "results").resolve().parents
