"""``miar sweep`` and ``miar collect``: layout, skipping, failures, the cross-check and the summary schema.

The fast tests run a tiny sweep (1 epoch, 64 training samples; one entry fails on purpose) through the CLI;
the slow one runs the shipped ``smoke`` sweep.
"""

import contextlib
import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from miar import cli
from miar import config as C
from miar.config import ConfigError
from miar.metrics import METRICS
from miar.study.params import check_parameters
from miar.study.plan import load_sweep

REPO = Path(__file__).resolve().parents[2]
TINY = ["train.epochs=1", "data.synthetic.n_train=64", "data.synthetic.n_valid=32", "data.synthetic.n_test=32",
        "train.progress=false"]


def _write_sweep(path: Path, bad: bool = True) -> Path:
    runs = [{"experiment": "smoke", "overrides": TINY},
            {"experiment": "smoke", "variant": "nocon", "overrides": TINY + ["loss.weight=0"], "seeds": [1]}]
    if bad:  # resolves (the config is valid) but the data is missing at run time
        runs.append({"experiment": "smoke", "variant": "bad",
                     "overrides": TINY + ["data.source=mmsa", "data.path=no-such-file.pkl"],
                     "seeds": [1]})
    path.write_text(json.dumps({"notebook": "train.ipynb", "seeds": [1, 2], "runs": runs}))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A tiny sweep with one failing run, executed once for the module; returns (tmp, results, rc, stderr)."""
    tmp = tmp_path_factory.mktemp("sweep")
    sweep = _write_sweep(tmp / "tiny.yaml")
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        mp.chdir(tmp)  # results/ relative to the working directory, as in the notebooks' run_dir
        rc = cli.main(["sweep", str(sweep), "--results", "results", "--workers", "2"])
    return tmp, tmp / "results", rc, err.getvalue()


def test_sweep_layout_and_failure(swept):
    tmp, results, rc, err = swept
    assert rc == 1
    assert "smoke+bad/s1" in err and "results/notebooks/smoke+bad/s1.ipynb" in err
    assert (results / "notebooks" / "smoke+bad" / "s1.ipynb").is_file()  # the failed run keeps its notebook
    assert (results / "notebooks" / "smoke+bad" / "s1.log").is_file()
    for key in ("smoke/s1", "smoke/s2", "smoke+nocon/s1"):
        run = results / "runs" / key
        assert (run / "metrics.json").is_file(), key
        assert (results / "notebooks" / f"{key}.ipynb").is_file()
        assert not (results / "notebooks" / f"{key}.log").exists()
    assert "name: smoke+nocon" in (results / "runs" / "smoke+nocon" / "s1" / "config.yaml").read_text()
    (record,) = (results / "sweeps").glob("tiny-*.json")  # the invocation's wall time
    rec = json.loads(record.read_text())
    assert rec["runs_executed"] == rec["runs_in_sweep"] == 4 and rec["runs_failed"] == 1
    assert rec["complete_from_scratch"] is False and rec["wall_s"] > 0 and rec["workers"] == 2
    assert rec["kernels"] == "one per worker, reset between runs"
    nb = json.loads((results / "notebooks" / "smoke" / "s2.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"] == {
        "experiment": "smoke", "seed": 2, "overrides": TINY, "run_dir": "results/runs/smoke/s2"}


def test_rerun_skips_complete_runs(swept, capsys, monkeypatch):
    tmp, results, _, _ = swept
    monkeypatch.chdir(tmp)
    sweep = _write_sweep(tmp / "tiny_ok.yaml", bad=False)
    stamp = (results / "runs" / "smoke" / "s1" / "metrics.json").stat().st_mtime_ns
    assert cli.main(["sweep", str(sweep), "--results", "results"]) == 0
    assert "3 complete, 0 to run" in capsys.readouterr().out
    assert (results / "runs" / "smoke" / "s1" / "metrics.json").stat().st_mtime_ns == stamp
    # a changed config is planned for a rerun, a failed (incomplete) run for a redo
    data = json.loads(sweep.read_text())
    data["runs"][0]["overrides"] = TINY + ["model.dropout=0.2"]
    sweep.write_text(json.dumps(data))
    assert cli.main(["sweep", str(sweep), "--results", "results", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "changed    smoke/s1" in out and "done       smoke+nocon/s1" in out
    assert cli.main(["sweep", str(tmp / "tiny.yaml"), "--results", "results", "--dry-run"]) == 0
    assert "incomplete smoke+bad/s1" in capsys.readouterr().out


def test_collect_tables_and_summary(swept, capsys, monkeypatch):
    tmp, results, _, _ = swept
    monkeypatch.chdir(tmp)
    assert cli.main(["collect", "--results", "results"]) == 0
    assert "incomplete run record" in capsys.readouterr().err  # the failed run is left out
    rows = list(csv.DictReader((results / "tables" / "runs.csv").open()))
    assert [(r["experiment"], r["run"], r["seed"]) for r in rows] == [
        ("smoke", "s1", "1"), ("smoke", "s2", "2"), ("smoke+nocon", "s1", "1")]
    for col in [f"test_{m}" for m in METRICS] + ["criterion", "valid_criterion", "best_epoch", "wall_time_s"]:
        assert rows[0][col] != "", col
    summary = json.loads((results / "summary.json").read_text())
    assert summary["schema_version"] == 1
    assert set(summary["experiments"]) == {"smoke", "smoke+nocon"}
    smoke = summary["experiments"]["smoke"]
    assert smoke["n_seeds"] == 2 and set(smoke["metrics"]) == set(METRICS)
    for s in smoke["metrics"].values():
        assert set(s) == {"mean", "std", "ci95"} and len(s["ci95"]) == 2
    maes = [float(r["test_mae"]) for r in rows[:2]]
    assert smoke["metrics"]["mae"]["mean"] == pytest.approx(sum(maes) / 2)
    table = list(csv.DictReader((results / "tables" / "summary.csv").open()))
    assert [r["experiment"] for r in table] == ["smoke", "smoke+nocon"]
    assert {"n_seeds", "mae_mean", "mae_std", "mae_ci95_low", "mae_ci95_high"} <= set(table[0])


def test_collect_catches_a_tampered_config(swept, capsys, tmp_path, monkeypatch):
    _, results, _, _ = swept
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    cfg = copy / "runs" / "smoke" / "s2" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("epochs: 1\n", "epochs: 3\n"))
    assert cli.main(["collect", "--results", str(copy)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "notebooks/smoke/s2.ipynb" in err and "train.epochs" in err


def test_sweep_config_errors_are_user_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - experiment: smoke\n    overrides: [train.nope=1]\n")
    assert cli.main(["sweep", str(bad), "--results", str(tmp_path / "r")]) == 2
    assert "train.nope" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing ran
    for text, msg in [("runs: []\n", "non-empty"), ("runz: []\n", "unknown key"),
                      ("runs:\n  - {experiment: smoke, varient: x}\n", "unknown key"),
                      ("runs:\n  - {experiment: smoke, variant: 'a b'}\n", "variant"),
                      ("runs:\n  - {experiment: smoke}\n  - {experiment: smoke}\n", "twice"),
                      ("seeds: [1.5]\nruns:\n  - {experiment: smoke}\n", "seeds"),
                      ("order: random\nruns:\n  - {experiment: smoke}\n", "order")]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_sweep(str(bad))
    assert cli.main(["sweep", "no_such_sweep"]) == 2


def test_shipped_sweeps_resolve(tmp_path, monkeypatch):
    nb, runs = load_sweep("smoke")
    assert nb.name == "train.ipynb" and len(runs) >= 4
    assert {r.display for r in runs} == {"smoke", "smoke+no_contrastive"}
    monkeypatch.chdir(tmp_path)  # the study's sweeps start from each model's tuned values: fake ones here
    models = ("miar", "text_only", "early_fusion", "late_fusion", "bclstm", "mult", "misa")
    (tmp_path / "results" / "tune").mkdir(parents=True)
    for m in models:
        (tmp_path / "results" / "tune" / f"mosi_std_{m}-best.yaml").write_text("overrides: [train.lr=0.0005]\n")
    ten, five = list(range(1111, 1121)), list(range(1111, 1116))
    by_exp = {}
    for sweep in ("primary", "ablations"):
        for r in load_sweep(sweep)[1]:
            by_exp.setdefault(r.display, []).append(r.seed)
            assert "train.lr=0.0005" in r.overrides and "lr: 0.0005" in r.config_yaml
    assert {f"mosi_{s}_{m}+tuned" for s in ("std", "bclf") for m in models} <= set(by_exp)
    assert all(by_exp[f"mosi_{s}_{m}+tuned"] == ten for s in ("std", "bclf") for m in models), "ten seeds"
    for v in ("no_interaction", "no_contrastive", "no_norm", "tokens3", "gate"):  # the abstract's components
        assert by_exp[f"mosi_std_miar+tuned.{v}"] == ten
    assert by_exp["mosi_std_miar+tuned.pooled"] == five and by_exp["mosi_std_miar+tuned.w128l2"] == five
    ft = load_sweep("primary_ft")[1]  # the fine-tuned text arm: 7 models x 2 splits x 10 seeds, seed-major
    assert len(ft) == 140 and [r.seed for r in ft[:14]] == [1111] * 14 and ft[14].seed == 1112
    assert {r.display for r in ft} == {f"mosi_{s}_{m}+tuned.ft_minilm" for s in ("std", "bclf") for m in models}
    assert all("model.finetune=top:2" in r.overrides and "train.lr=0.0005" in r.overrides for r in ft)
    legacy = {r.display for r in load_sweep("legacy")[1]}
    assert len(legacy) == 7 * 5 * 3
    synthetic = {r.display for r in load_sweep("synthetic")[1]}
    assert {"synth_gap", "synth_gap+no_contrastive", "synth_interaction+no_interaction",
            "synth_strengths+gate"} <= synthetic


def test_seed_major_order_interleaves_entries(tmp_path):
    """``order: seed``: every entry's first seed, then every entry's second; an entry with fewer seeds drops out."""
    sweep = tmp_path / "s.yaml"
    runs = [{"experiment": "smoke", "seeds": [1, 2, 3]}, {"experiment": "smoke", "variant": "v", "seeds": [1, 2]}]
    sweep.write_text(json.dumps({"seeds": [1], "runs": runs}))
    assert [r.key for r in load_sweep(str(sweep))[1]] == ["smoke/s1", "smoke/s2", "smoke/s3", "smoke+v/s1", "smoke+v/s2"]
    sweep.write_text(json.dumps({"seeds": [1], "order": "seed", "runs": runs}))
    assert [r.key for r in load_sweep(str(sweep))[1]] == ["smoke/s1", "smoke+v/s1", "smoke/s2", "smoke+v/s2", "smoke/s3"]


def test_check_parameters():
    before = {"a": 1}
    ns = dict(before, experiment="x", seed=3, _i5="ignored")
    assert check_parameters(before, ns, {"experiment": str, "seed": int}) == {"experiment": "x", "seed": 3}
    with pytest.raises(ConfigError, match="bogus"):
        check_parameters(before, dict(ns, bogus=1), {"experiment": str, "seed": int})
    with pytest.raises(ConfigError, match="'a'"):  # a rebound name counts as injected
        check_parameters(before, dict(ns, a=2), {"experiment": str, "seed": int})
    with pytest.raises(ConfigError, match="seed"):
        check_parameters(before, dict(ns, seed=True), {"experiment": str, "seed": int})


@pytest.mark.slow
def test_shipped_smoke_sweep_and_collect(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep", "smoke", "--workers", "2"]) == 0
    assert cli.main(["collect"]) == 0
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert {k: v["n_seeds"] for k, v in summary["experiments"].items()} == {"smoke": 2, "smoke+no_contrastive": 2}


def test_parallel_sweep_runs_equal_a_direct_fit(swept, tmp_path):
    """Workers split the cores between them, yet a run's metrics are those of a lone ``fit``."""
    from miar.train import fit

    _, results, _, _ = swept
    direct = fit(C.load("smoke", TINY, seed=2), tmp_path / "direct")
    swept_metrics = json.loads((results / "runs" / "smoke" / "s2" / "metrics.json").read_text())
    assert direct["test"] == swept_metrics["test"] and direct["valid"] == swept_metrics["valid"]


def test_reused_kernels_start_each_notebook_afresh(swept):
    """Each worker keeps its kernel, yet every notebook's execution counts start at 1 (the reset ran)."""
    _, results, _, _ = swept
    for key in ("smoke/s1", "smoke/s2", "smoke+nocon/s1"):
        nb = json.loads((results / "notebooks" / f"{key}.ipynb").read_text())
        counts = [c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code"]
        assert counts == list(range(1, len(counts) + 1)), (key, counts)


def test_fresh_kernels_give_the_same_runs(swept, tmp_path, monkeypatch):
    """``--fresh-kernels`` (a kernel per run) and the default reused kernels write the same metrics."""
    _, results, _, _ = swept
    sweep = tmp_path / "one.yaml"
    sweep.write_text(json.dumps({"notebook": "train.ipynb", "seeds": [1],
                                 "runs": [{"experiment": "smoke", "variant": "nocon",
                                           "overrides": TINY + ["loss.weight=0"]}]}))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep", str(sweep), "--results", "results", "--fresh-kernels"]) == 0
    (record,) = (tmp_path / "results" / "sweeps").glob("one-*.json")
    assert json.loads(record.read_text())["kernels"] == "fresh per run"
    fresh = json.loads((tmp_path / "results" / "runs" / "smoke+nocon" / "s1" / "metrics.json").read_text())
    reused = json.loads((results / "runs" / "smoke+nocon" / "s1" / "metrics.json").read_text())
    assert fresh["test"] == reused["test"] and fresh["valid"] == reused["valid"]


def test_textgen_runs_the_two_strongest_baselines_of_the_committed_primary_table():
    """The text-generalization sweep names its baselines; they must be the primary table's two strongest by mean
    validation MAE in the committed results (validation data only), or the sweep file is out of date."""
    import yaml

    from miar import report as R
    summary = R.load_summary(REPO / "results")
    assert R.present(summary, R.MAIN_TABLE) == list(R.MAIN_TABLE), "the committed primary table is incomplete"
    strongest = {R.parts(n)[0].removeprefix("mosi_std_").removesuffix("+tuned")
                 for n in R.ranked_by_validation(summary, R.BASELINES)[:2]}
    entries = yaml.safe_load((REPO / "miar" / "experiments" / "sweeps" / "textgen.yaml").read_text())["runs"]
    models = {e["experiment"].removeprefix("mosi_std_") for e in entries}
    assert models == {"miar", *strongest}


def test_sweep_experiments_lists_the_run_directories_load_sweep_makes(monkeypatch):
    """The book's status table lists a sweep's experiments without resolving configs; the names must be the
    ones the runs are written under (the tuned values read from the committed results/tune)."""
    from miar.study.plan import load_sweep, sweep_experiments

    monkeypatch.chdir(REPO)
    _, runs = load_sweep("textgen")
    assert sweep_experiments("textgen") == list(dict.fromkeys(r.display for r in runs))
    assert "mosi_std_miar+tuned.ft_minilm" in sweep_experiments("textgen")


def test_stop_after_ends_a_sweep_cleanly_and_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    """--stop-after: no run starts after the deadline, the one under way finishes and is recorded, exit 3; the
    sweep record counts the run that ran, and the same command finishes the rest."""
    sweep = _write_sweep(tmp_path / "tiny.yaml", bad=False)  # 3 runs
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.chdir(tmp_path)
    args = ["sweep", str(sweep), "--results", "results", "--workers", "1"]
    assert cli.main([*args, "--stop-after", "0.0001"]) == 3  # one worker thread: one run in flight, then stop
    out = capsys.readouterr().out
    assert "1 runs done, 2 not started" in out
    done = [p for p in (tmp_path / "results" / "runs").glob("*/s*") if (p / "metrics.json").is_file()]
    assert len(done) == 1
    rec = json.loads(next((tmp_path / "results" / "sweeps").glob("tiny-*.json")).read_text())
    assert rec["runs_executed"] == 1 and rec["runs_failed"] == 0 and rec["complete_from_scratch"] is False
    assert cli.main([*args, "--stop-after", "-1"]) == 2  # a clear error, nothing run
    assert cli.main(args) == 0
    assert "3 runs, 1 complete, 2 to run" in capsys.readouterr().out
