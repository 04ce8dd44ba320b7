"""The study-speed benchmark's breakdown: a committed run trained again with a timer on each part of ``fit``, the
parts adding up to its wall time, and the same test metrics as the record (the timers change nothing)."""

from __future__ import annotations

from faultkit import TINY

from miar import config as C
from miar.bench.study import PARTS, breakdown, notebook_overhead
from miar.train import fit


def test_breakdown_parts_add_up_and_the_rerun_is_the_record(tmp_path):
    run = tmp_path / "results" / "runs" / "smoke" / "s1"
    fit(C.load("smoke", overrides=TINY + ["train.epochs=2"], seed=1), run)
    b = breakdown(run, tmp_path / "scratch", peak=1e10)
    assert b["same_test_metrics"] and b["test_mae"] == b["recorded_test_mae"]
    assert set(b["parts_s"]) == {*PARTS, "other"} and all(v >= 0 for k, v in b["parts_s"].items() if k != "other")
    assert abs(sum(b["parts_s"].values()) - (b["fit_s"] + b["parts_s"]["data"])) < 0.01
    assert b["steps"] > 0 and b["train_flops"] > 0 and b["flop_bound_s"] == round(b["train_flops"] / 1e10, 3)
    assert b["parts_s"]["train_steps"] > 0 and b["epochs"] == 2


def test_notebook_overhead_without_notebooks_is_empty(tmp_path):
    assert notebook_overhead(tmp_path, "*/*") == {"runs": 0}
