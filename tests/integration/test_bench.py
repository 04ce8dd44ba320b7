"""The benchmark's plumbing on tiny tensors (``--quick``): JSON keys, timing, study wall time, MMSA."""

import json

import pytest
import torch

from miar.bench import cli, core
from miar.bench import mmsa as bench_mmsa


def need_mmsa() -> None:
    ok, info = bench_mmsa.available()  # imports MMSA (and transformers): only in the tests that need it
    if not ok:
        pytest.skip(f"MMSA is not installed (the bench extra): {info}")


def test_quick_run_writes_every_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # run in this process, not a re-exec
    out = tmp_path / "bench" / "cpu.json"
    assert cli.main(["--quick", "--device", "cpu", "--threads", "1", "--json", str(out),
                       "--results", str(tmp_path / "results")]) == 0
    report = json.loads(out.read_text())
    for key in ("machine", "settings", "matmul_peak", "models", "epoch_scaling", "miar_mosei_epoch_s",
                "mult_train_speedup_vs_mmsa", "study_wall_time"):
        assert key in report, key
    m = report["machine"]
    for key in ("cpu_model", "cores", "torch", "device", "load_average_start", "load_average_end"):
        assert key in m, key
    assert report["settings"]["quick"] is True
    assert {r["model"] for r in report["models"]} == set(core.MODELS)
    for r in report["models"]:
        assert r["train_samples_per_s"] > 0 and r["infer_batch_ms"] > 0
        assert r["flops_per_train_sample"] > 0 and 0 < r["fraction_of_peak"] < 1
    sizes = [r["size"] for r in report["epoch_scaling"]]
    assert sizes == ["mosi", "mosei", "4x_mosei"]
    assert report["epoch_scaling"][2]["cycled_passes"] == 4
    assert report["miar_mosei_epoch_s"] == report["epoch_scaling"][1]["epoch_s"] > 0
    assert report["mult_train_speedup_vs_mmsa"] is None  # not asked for
    assert report["study_wall_time"] == "not yet run"
    printed = capsys.readouterr().out
    assert "miar_mosei_epoch_s" in printed and "epoch size" in printed


def test_interleaved_times_every_function_after_warmup():
    calls = {"a": 0, "b": 0}

    def fn(k):
        def f(_):
            calls[k] += 1
        return f
    s = core.Settings(warmup=2, repeats=3)
    t = core.interleaved({"a": fn("a"), "b": fn("b")}, lambda: None, s)
    assert calls == {"a": 5, "b": 5}
    assert len(t["a"]) == len(t["b"]) == 3


def test_study_wall_time_from_sweep_record_and_run_records(tmp_path):
    assert cli.study_wall_time(tmp_path) == "not yet run"
    for name, wall in (("mosi", 10.0), ("mosi_bc_mult", 5.5)):
        run = tmp_path / "runs" / name / "seed1111"
        run.mkdir(parents=True)
        (run / "env.json").write_text(json.dumps({"wall_time_s": wall}))
    got = cli.study_wall_time(tmp_path)
    assert got["runs"] == 2 and got["sum_of_run_wall_times_s"] == pytest.approx(15.5)
    assert "sweep_wall_s" not in got  # no sweep record yet
    (tmp_path / "sweeps").mkdir()
    from miar.declared import STUDY_SWEEPS
    for i, name in enumerate(STUDY_SWEEPS):  # the study's time: each of its sweeps, run from scratch
        rec = {"sweep": name, "started_utc": "2026-01-01T00:00:00Z", "wall_s": 450.0, "workers": 2,
               "runs_in_sweep": 2, "runs_executed": 2, "runs_failed": 0, "complete_from_scratch": True}
        (tmp_path / "sweeps" / f"{name}-20260101T00000{i}Z.json").write_text(json.dumps(rec))
        if i == 0:
            assert cli.study_wall_time(tmp_path).get("sweep_wall_s") is None  # not until every sweep has one
    partial = {**rec, "started_utc": "2026-01-02T00:00:00Z", "wall_s": 5.0, "runs_executed": 1,
               "complete_from_scratch": False}  # a later top-up run does not count as the study's time
    (tmp_path / "sweeps" / f"{rec['sweep']}-20260102T000000Z.json").write_text(json.dumps(partial))
    old = {**rec, "sweep": "study", "wall_s": 99.0}  # the first design's sweep is not this study
    (tmp_path / "sweeps" / "study-20260101T000000Z.json").write_text(json.dumps(old))
    got = cli.study_wall_time(tmp_path)
    assert got["sweep_wall_s"] == 450.0 * len(STUDY_SWEEPS) and got["sweep_workers"] == 2


def test_a_sweep_spanning_sessions_adds_every_invocation(tmp_path):
    """primary_ft runs over several sessions: its time is the sum of its invocations, and the study is
    complete only once every run it names is; until then the targets row says how far it is."""
    from miar.report.perf import targets_table
    from miar.report.study_time import RESUMED_SWEEPS, STUDY_SWEEPS, study_time_table, study_wall

    (tmp_path / "sweeps").mkdir()
    for i, name in enumerate(STUDY_SWEEPS):
        rec = {"sweep": name, "started_utc": "2026-01-01T00:00:00Z", "wall_s": 600.0, "workers": 2,
               "runs_in_sweep": 2, "runs_executed": 2, "runs_failed": 0, "complete_from_scratch": True}
        (tmp_path / "sweeps" / f"{name}-20260101T00000{i}Z.json").write_text(json.dumps(rec))
    before = study_wall(tmp_path)  # the resumed sweep has not started: not the whole study
    assert before["complete"] is False and before["pending"] == dict.fromkeys(RESUMED_SWEEPS, "not started")
    name = RESUMED_SWEEPS[0]
    for day, (wall, executed) in enumerate(((3000.0, 14), (1200.0, 6)), start=1):
        rec = {"sweep": name, "started_utc": f"2026-01-0{day}T00:00:00Z", "wall_s": wall, "workers": 2,
               "runs_in_sweep": 140, "runs_executed": executed, "runs_failed": 0, "complete_from_scratch": False}
        (tmp_path / "sweeps" / f"{name}-2026010{day}T000000Z.json").write_text(json.dumps(rec))
    study = study_wall(tmp_path)
    assert study["wall_s"] == 600.0 * len(STUDY_SWEEPS) + 4200.0 and study["complete"] is False
    assert study["runs_in_sweep"] == 2 * len(STUDY_SWEEPS) + 20 and study["pending"][name] == "0 of 140 runs done"
    row = targets_table({}, study).iloc[-1]
    assert row["Value"].endswith("so far") and f"`{name}` 0 of 140 runs done" in row["Measure"]
    assert row["Met"] == ("no" if study["wall_s"] > 4 * 3600 else "-")
    part = study_time_table(tmp_path)["Part"].tolist()
    assert f"sweep `{name}` (2 invocations; 0 of 140 runs done so far: 20 by these)" in part and part[-1] == "total"
    # Complete runs beyond what the records executed: those another study sweep names are that sweep's
    # (timed there); the rest ran in an invocation that wrote no record, and the table says so.
    from miar.declared import sweep_runs
    from miar.records import RECORD_FILES
    shared = sorted(sweep_runs(name) & set().union(*(sweep_runs(n) for n in STUDY_SWEEPS)))
    own = sorted(sweep_runs(name) - set(shared))
    assert shared and len(own) >= 23
    for exp, seed in [*shared[:2], *own[:23]]:
        run = tmp_path / "runs" / exp / f"s{seed}"
        run.mkdir(parents=True)
        for f in RECORD_FILES:
            (run / f).write_text(json.dumps({"test": {}}) if f == "metrics.json" else "x")
    got = study_time_table(tmp_path)["Part"].tolist()
    assert any(p.startswith(f"sweep `{name}` (2 invocations; 25 of 140 runs done so far: 20 by these, 2 by `")
               and p.endswith("(timed there), 3 by an invocation stopped before it wrote a record (untimed))")
               for p in got), got


def test_mmsa_mult_built_with_our_hyperparameters():
    need_mmsa()
    from miar.model.mult import mult_from_hparams
    dims = {"text": 24, "audio": 5, "vision": 20}
    theirs, args = bench_mmsa.build(dims, d=16, n_heads=2, n_layers=2, dropout=0.1)
    ours = mult_from_hparams(dims, 16, 2, 2, 0.1)
    net = theirs.net
    assert (net.d_l, net.num_heads, net.layers) == (16, 2, 2)
    assert len(net.trans_l_with_a.layers) == len(ours.cross["text<-audio"].blocks) == 2
    assert len(net.trans_l_mem.layers) == len(ours.mem["text"].blocks) == 3
    assert args["feature_dims"] == [24, 5, 20] and args["attn_mask"] is False
    assert net.out_layer.in_features == ours.out.in_features == 6 * 16


def test_mmsa_comparison_quick():
    need_mmsa()
    torch.set_num_threads(1)
    s = core.settings(quick=True, device="cpu")
    got = bench_mmsa.compare(s, log=lambda _: None)
    assert got["available"] and len(got["shapes"]) == len(s.shapes) * len(s.batches)
    assert all(r["speedup"] > 0 for r in got["shapes"]) and got["speedup_geomean"] > 0


def test_omp_policy_auto_follows_the_load(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(cli.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert cli.omp_policy("auto") == "active" and cli.omp_policy("passive") == "passive"
    monkeypatch.setattr(cli.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    assert cli.omp_policy("auto") == "passive" and cli.omp_policy("active") == "active"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # set by the caller: auto keeps it
    assert cli.omp_policy("auto") == "active"
