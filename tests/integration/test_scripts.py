"""``scripts/compare_records.py``: two results directories compared run for run (the cross-machine table)."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("compare_records", REPO / "scripts" / "compare_records.py")
compare_records = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_records)


def _record(results: Path, key: str, mae: float, epoch: int, config: str = "seed: 1\n", device: str = "cpu X"):
    d = results / "runs" / key
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(config)
    (d / "env.json").write_text(json.dumps({"commit": "abc", "device_name": device}))
    metrics = {"mae": mae, "has0_acc2": 0.7, "non0_acc2": 0.71, "corr": 0.6}
    (d / "metrics.json").write_text(json.dumps({"valid": metrics, "test": metrics, "best_epoch": epoch}))


def test_compare_records(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    _record(old, "e/s1", 0.80, 3)
    _record(new, "e/s1", 0.80, 3, device="cpu Y")  # identical
    _record(old, "e/s2", 0.80, 3)
    _record(new, "e/s2", 0.90, 4)  # moved: another epoch
    _record(old, "e/s3", 0.80, 3)
    _record(new, "e/s3", 0.80, 3, config="seed: 3\nother: 1\n")  # another config: listed, not compared
    _record(old, "f/s1", 0.80, 3)  # on one side only
    out = compare_records.compare(old, new)
    assert out["runs_compared"] == 2 and out["runs_identical"] == 1 and out["runs_same_epoch"] == 1
    assert out["config_differs"] == ["e/s3"] and out["only_old"] == ["f/s1"] and out["only_new"] == []
    assert abs(out["test_mae_abs_diff"]["max"] - 0.1) < 1e-12
    (exp,) = out["experiments"]
    assert exp["n"] == 2 and abs(exp["new_mae"] - exp["old_mae"] - 0.05) < 1e-12
    assert out["old"]["device_name"] == "cpu X" and out["new"]["device_name"] == "cpu Y"


def test_compare_records_refuses_nothing_in_common(tmp_path, monkeypatch, capsys):
    _record(tmp_path / "old", "e/s1", 0.8, 3)
    _record(tmp_path / "new", "e/s2", 0.8, 3)
    monkeypatch.setattr("sys.argv", ["compare_records.py", str(tmp_path / "old"), str(tmp_path / "new"),
                                     "--json", str(tmp_path / "out.json")])
    assert compare_records.main() == 2
    assert "no complete run" in capsys.readouterr().err and not (tmp_path / "out.json").exists()


def test_verify_reruns_appends_and_replaces(tmp_path, monkeypatch):
    """``verify_reruns.py --json F --append`` keeps the earlier checks and replaces a run checked again."""
    import sys

    from miar import cli

    spec_v = importlib.util.spec_from_file_location("verify_reruns", REPO / "scripts" / "verify_reruns.py")
    verify_reruns = importlib.util.module_from_spec(spec_v)
    spec_v.loader.exec_module(verify_reruns)
    tiny = ["--set", "train.epochs=1", "--set", "train.progress=false", "--set", "data.synthetic.n_train=64",
            "--set", "data.synthetic.n_valid=32", "--set", "data.synthetic.n_test=32"]
    runs = [tmp_path / "runs" / "smoke" / f"s{s}" for s in (1, 2)]
    for seed, run in zip((1, 2), runs):
        assert cli.main(["train", "smoke", "--seed", str(seed), *tiny, "--run-dir", str(run)]) == 0
    out = tmp_path / "verify.json"
    out.write_text(json.dumps({"runs": [{"run": "older/s9", "same": True}, {"run": str(runs[0]), "same": False}]}))
    monkeypatch.setattr(sys, "argv", ["verify_reruns.py", *map(str, runs), "--json", str(out), "--append"])
    assert verify_reruns.main() == 0
    got = json.loads(out.read_text())["runs"]
    assert [c["run"] for c in got] == ["older/s9", str(runs[0]), str(runs[1])] and all(c["same"] for c in got)
    monkeypatch.setattr(sys, "argv", ["verify_reruns.py", str(runs[1]), "--json", str(out)])  # no --append: replaced
    assert verify_reruns.main() == 0 and [c["run"] for c in json.loads(out.read_text())["runs"]] == [str(runs[1])]
