"""``miar tune`` (issue 17): search spaces validated strictly, trials that never see the test split, a driver
killed with SIGKILL and restarted ends with exactly N trials and the report of an uninterrupted search."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from faultkit import TINY, env, main, one_line, snapshot

from miar import config as C
from miar.study.integrity import record_problem
from miar.study.spaces import SPACES_DIR, load_enqueue, load_space, space_path
from miar.study.tune import fmt

N = 4
SETS = sum((["--set", o] for o in TINY), [])


def _tune(results: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "miar.cli", "tune", "smoke", "--trials", str(N), "--results", str(results),
            "--seeds", "1", "--sampler-seed", "7", *SETS, *extra]


def _report(results: Path) -> tuple[list[str], str]:
    rc, out, err = main(["tune", "smoke", "--results", results, "--report", "--confirm-seeds", "3"])
    assert rc == 0, err
    lines = [ln for ln in out.splitlines() if not ln.startswith("wrote ")]
    return lines, (results / "smoke-confirm.yaml").read_text()


def _trial_dirs(results: Path) -> list[str]:
    return sorted(p.parent.name for p in (results / "runs").glob("smoke+t*/s1") if record_problem(p) is None)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    results = tmp_path_factory.mktemp("tune") / "results"
    r = subprocess.run(_tune(results), env=env(), capture_output=True, text=True, timeout=600, cwd=results.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    return results


def test_trials_are_run_records_without_the_test_split(uninterrupted):
    assert _trial_dirs(uninterrupted) == [f"smoke+t{i:04d}" for i in range(N)]
    run = uninterrupted / "runs" / "smoke+t0000" / "s1"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"] is None and metrics["valid"]["mae"] > 0
    assert (run / "predictions.csv").read_text() == ""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["train"]["evaluate_test"] is False and cfg["name"] == "smoke+t0000"
    assert (uninterrupted / "smoke.db").is_file()


def test_sigkill_of_the_driver_then_restart_gives_the_same_study(uninterrupted, tmp_path):
    results = tmp_path / "results"
    proc = subprocess.Popen(_tune(results), env=env(), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(_trial_dirs(results)) < 2:  # mid-search: two trials recorded
            time.sleep(0.2)
        assert len(_trial_dirs(results)) >= 2, "the search never got going"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, its LocalCluster's workers and their kernels
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert len(_trial_dirs(results)) < N, "the search finished before it was killed: nothing was tested"
    r = subprocess.run(_tune(results), env=env(), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _trial_dirs(results) == [f"smoke+t{i:04d}" for i in range(N)]
    import optuna
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{results / 'smoke.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * N  # exactly N, none re-asked
    assert _report(results) == _report(uninterrupted)
    confirm = yaml.safe_load(_report(results)[1])
    assert confirm["seeds"] == [1111, 1112, 1113] and confirm["runs"][0]["variant"] == "tuned"
    assert not any("evaluate_test" in o for o in confirm["runs"][0]["overrides"])  # confirmed runs test


def test_a_finished_study_runs_nothing_more(uninterrupted):
    r = subprocess.run(_tune(uninterrupted), env=env(), capture_output=True, text=True, timeout=300,
                       cwd=uninterrupted.parent)
    assert r.returncode == 0 and "to execute" not in r.stdout, r.stdout + r.stderr[-2000:]


def test_shipped_spaces_and_published_configurations_resolve():
    for exp in ("smoke", "mosi_bc_miar", "mosi_bc_mult", "mosi_bc_misa", "mosi_bc_bclstm", "mosi_bc_text_only",
                "mosi_bc_early_fusion", "mosi_bc_late_fusion"):
        assert load_space(space_path(exp), exp)
    for model in ("mult", "misa"):
        space = load_space(SPACES_DIR / f"{model}.yaml", f"mosi_bc_{model}")
        for trial in load_enqueue(SPACES_DIR / "enqueue" / f"{model}_published.yaml", space):
            C.load(f"mosi_bc_{model}", overrides=[f"{k}={fmt(v)}" for k, v in trial.items()])  # a valid config


@pytest.mark.parametrize("text, needle", [
    ("params:\n  train.nope: {type: float, low: 0.1, high: 1.0}\n", "train.nope"),
    ("params:\n  train.lr: {type: float, low: 0.1, high: 0.01}\n", "must be below"),
    ("params:\n  train.lr: {type: float, low: 0.0, high: 0.1, log: true}\n", "log"),
    ("params:\n  train.lr: {type: float, lo: 0.0, high: 0.1}\n", "unknown field"),
    ("params:\n  model.dropout: {type: float, low: 0.1, high: 1.5}\n", "model.dropout"),
    ("params:\n  data.batch_size: {type: categorical, choices: []}\n", "choices"),
    ("parms:\n  train.lr: {type: float, low: 0.1, high: 1.0}\n", "unknown key"),
])
def test_a_bad_search_space_is_one_line(tmp_path, text, needle):
    (tmp_path / "space.yaml").write_text(text)
    rc, _, err = main(["tune", "smoke", "--space", tmp_path / "space.yaml", "--trials", "1",
                       "--results", tmp_path / "r"])
    one_line(rc, err, needle, "space.yaml")
    assert not (tmp_path / "r").exists()


def test_an_enqueued_value_outside_the_space_is_one_line(tmp_path):
    (tmp_path / "q.yaml").write_text("trials:\n  - {train.lr: 5.0}\n")
    rc, _, err = main(["tune", "smoke", "--enqueue", tmp_path / "q.yaml", "--results", tmp_path / "r"])
    one_line(rc, err, "outside the search space")


def test_override_values_read_back_exactly():
    for v in (1e-05, 0.00012345678901234, 3.0, 2e-3, 16, True, "x"):
        assert yaml.safe_load(fmt(v)) == v and type(yaml.safe_load(fmt(v))) is type(v)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_trial_asked_half_way_is_completed_as_first_drawn(sampler):
    """A driver killed inside ``ask`` leaves a trial with some parameters stored: the restart draws the rest as
    the uninterrupted ask did."""
    import optuna

    from miar.study import tune
    space = load_space(space_path("smoke"), "smoke")
    settings = {"sampler": sampler, "sampler_seed": 3}
    whole = optuna.create_study()
    expected = tune._ask(whole, space, settings).params
    half = optuna.create_study()
    half.sampler = tune._sampler(settings, 0)
    half.ask({p.key: p.distribution() for p in space[:2]})  # killed after two of four parameters
    (frozen,) = half.trials
    assert tune._complete(half, frozen, space, settings).params == expected


def test_a_sweep_entry_takes_the_chosen_trial_then_its_own_overrides(uninterrupted, tmp_path):
    from miar.study.plan import load_sweep
    _report(uninterrupted)
    best = yaml.safe_load((uninterrupted / "smoke-best.yaml").read_text())
    assert best["study"] == "smoke" and best["complete_trials"] == N and best["seeds"] == [1]
    sweep = tmp_path / "tuned.yaml"
    sweep.write_text(yaml.safe_dump({"tuned_dir": str(uninterrupted), "seeds": [1111], "runs": [
        {"experiment": "smoke", "variant": "tuned", "tuned": "smoke"},
        {"experiment": "smoke", "variant": "tuned_w0", "tuned": "smoke", "overrides": ["loss.weight=0"]}]}))
    _, runs = load_sweep(str(sweep))
    chosen = [o for o in runs[0].overrides if o != "name=smoke+tuned"]
    assert chosen == best["overrides"] and "evaluate_test" not in " ".join(chosen)
    assert runs[1].overrides[-1] == "loss.weight=0"  # the entry's delta applies on top of the chosen values
    assert "weight: 0.0" in runs[1].config_yaml


def test_a_tuned_entry_without_its_study_is_one_line(tmp_path):
    sweep = tmp_path / "tuned.yaml"
    sweep.write_text(yaml.safe_dump({"tuned_dir": str(tmp_path / "none"), "runs": [
        {"experiment": "smoke", "variant": "tuned", "tuned": "smoke"}]}))
    rc, _, err = main(["sweep", sweep, "--dry-run", "--results", tmp_path / "r"])
    one_line(rc, err, "smoke-best.yaml", "miar tune smoke")


# ----------------------------------------------------------------------------- a study is bound to its definition

def _copy(results: Path, tmp_path: Path) -> Path:
    import shutil
    return Path(shutil.copytree(results, tmp_path / "results"))


def _state(results: Path) -> dict:
    """Every file of the study but the locks (the refused driver held them while it checked)."""
    return {k: v for k, v in snapshot(results).items() if ".lock" not in k}


def _settings(results: Path) -> dict:
    import optuna
    return optuna.load_study(study_name="smoke", storage=f"sqlite:///{results / 'smoke.db'}").user_attrs["settings"]


@pytest.mark.parametrize("change, needle", [(["--set", "data.batch_size=16"], "--set"),
                                            (["--set", "train.epochs=2"], "--set")])
def test_resuming_with_other_overrides_is_one_line(uninterrupted, tmp_path, change, needle):
    """A study resumed with other --set values would mix two configurations in one search."""
    results = _copy(uninterrupted, tmp_path)
    before = _state(results)
    rc, _, err = main(_tune(results, *change)[3:])
    one_line(rc, err, needle, "smoke.db", "study smoke was made with")
    assert _state(results) == before


def test_another_experiment_file_of_the_same_name_is_one_line(uninterrupted, tmp_path):
    """Same study name, other experiment file: refused by the resolved config's digest."""
    results = _copy(uninterrupted, tmp_path)
    other = tmp_path / "other" / "smoke.yaml"
    other.parent.mkdir()
    other.write_text((C.EXPERIMENTS_DIR / "smoke.yaml").read_text().replace("head_hidden: 32", "head_hidden: 16"))
    before = _state(results)
    args = _tune(results)[3:]
    args[1] = str(other)
    rc, _, err = main(args)
    one_line(rc, err, "resolved experiment config", "smoke.db")
    assert _state(results) == before


def test_the_report_carries_the_overrides_every_trial_ran_with(uninterrupted):
    """-best.yaml and -confirm.yaml hold the --set values of the search, so the confirmed config was tuned."""
    lines, confirm = _report(uninterrupted)
    best = yaml.safe_load((uninterrupted / "smoke-best.yaml").read_text())
    assert best["set"] == TINY and best["overrides"][-len(TINY):] == TINY
    assert best["config_digest"] == _settings(uninterrupted)["config"]
    assert yaml.safe_load(confirm)["runs"][0]["overrides"] == best["overrides"]
    assert any(" ".join(TINY) in ln for ln in lines)


def test_a_study_without_a_stored_definition_reports_and_records_it_on_resume(uninterrupted, tmp_path):
    """Studies written before the definition was stored (the committed ones) still report and resume."""
    import optuna
    results = _copy(uninterrupted, tmp_path)
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{results / 'smoke.db'}")
    legacy = {k: v for k, v in study.user_attrs["settings"].items() if k not in ("config", "overrides")}
    study.set_user_attr("settings", legacy)
    _report(results)
    best = yaml.safe_load((results / "smoke-best.yaml").read_text())
    assert "set" not in best and "config_digest" not in best  # nothing claimed that was not stored
    r = subprocess.run(_tune(results), env=env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0 and "to execute" not in r.stdout, r.stderr[-2000:]
    assert _settings(results) == _settings(uninterrupted)  # recorded on this write


def test_a_second_study_never_overwrites_the_first_ones_trial_records(uninterrupted, tmp_path):
    """Another storage and sampler seed in the same --results: its trial 0 differs; the complete record of the
    first study's trial 0 stays, and the driver says so in one line."""
    results = _copy(uninterrupted, tmp_path)
    runs = results / "runs"
    before = snapshot(runs)
    r = subprocess.run(_tune(results, "--sampler-seed", "8", "--storage", f"journal:{tmp_path / 'other.log'}"),
                       env=env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    one_line(r.returncode, r.stderr, "smoke+t0000", "never overwritten")
    assert snapshot(runs) == before


def test_drivers_on_one_study_share_its_trials(tmp_path):
    """A live driver's trials are never taken by another; a gone driver's are, once; a trial another driver
    took over and told is not told twice."""
    import optuna

    from miar.study import tune
    from miar.study.tune_share import Driver
    space = load_space(space_path("smoke"), "smoke")
    settings = {"sampler": "random", "sampler_seed": 0, "batch": 2}
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    a = Driver(url).__enter__()
    mine = tune._batch(study, space, settings, 3, a)
    assert [t.number for t in mine] == [0, 1]
    with Driver(url) as b:
        assert [t.number for t in tune._batch(study, space, settings, 3, b)] == [2]  # room for one more
        assert tune._batch(study, space, settings, 3, b) == []  # every other trial is a's, and a is alive
        a.__exit__(None, None, None)  # a is gone (its lock free, as when its process dies): b takes its trials
        assert [t.number for t in tune._batch(study, space, settings, 3, b)] == [0, 1]
        tune._tell(study, mine, {t.number: [] for t in mine}, tmp_path, "mae", set(), a)  # a's late tell
    assert [t.state.name for t in study.trials] == ["RUNNING"] * 3
    assert {t.user_attrs["driver"] for t in study.trials} == {b.token}


def test_a_committed_study_reports_as_it_did(tmp_path):
    """The committed studies stored no definition: --report on a copy writes their committed files unchanged."""
    import shutil
    committed = Path(__file__).resolve().parents[2] / "results" / "tune"
    db = sorted(committed.glob("*.db"))[0]
    shutil.copy(db, tmp_path / db.name)
    rc, _, err = main(["tune", db.stem, "--results", tmp_path, "--report"])
    assert rc == 0, err
    for suffix in ("-best.yaml", "-confirm.yaml"):
        assert (tmp_path / f"{db.stem}{suffix}").read_text() == (committed / f"{db.stem}{suffix}").read_text()
    assert (tmp_path / db.name).read_bytes() == db.read_bytes()  # a report writes nothing into the study


def _shared_storage(tmp_path: Path, kind: str):
    """The ``--storage`` of both drivers and the Optuna storage that reads it back."""
    import optuna
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        return url, url
    from optuna.storages.journal import JournalFileBackend
    return f"journal:{tmp_path / 'shared.log'}", optuna.storages.JournalStorage(
        JournalFileBackend(str(tmp_path / "shared.log")))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_drivers_on_one_storage_share_the_search(tmp_path, kind):
    """Two drivers on one study (a journal, or a SQLite file: its writers take turns), each with its own
    --results: every trial runs once, none is told twice, both exit 0 (they used to repeat a trial, then crash
    telling it)."""
    import optuna
    storage, readback = _shared_storage(tmp_path, kind)
    procs = [subprocess.Popen(_tune(tmp_path / f"r{i}", "--storage", storage), env=env(), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
             for i in range(2)]
    outs = []
    try:
        for p in procs:
            outs.append((p.communicate(timeout=600)[1], p.returncode))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
    assert [rc for _, rc in outs] == [0, 0], [err[-2000:] for err, _ in outs]
    ran = [_trial_dirs(tmp_path / f"r{i}") if (tmp_path / f"r{i}" / "runs").is_dir() else [] for i in range(2)]
    assert sorted(ran[0] + ran[1]) == [f"smoke+t{i:04d}" for i in range(N)], ran  # each trial in one place
    study = optuna.load_study(study_name="smoke", storage=readback)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * N
