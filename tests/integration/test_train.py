"""The trainer end to end: the loss falls, the record is complete, runs are deterministic on CPU."""

import json
import subprocess
import sys

import pytest

from miar import config as C
from miar.records import RECORD_FILES, is_complete
from miar.train import fit, schedule


def test_schedule_warmup_then_cosine():
    f = schedule(total_steps=10, warmup_steps=2, cosine=True)
    assert [round(f(s), 3) for s in (0, 1, 2, 10)] == [0.5, 1.0, 1.0, 0.0]
    assert schedule(10, 0, cosine=False)(7) == 1.0


def test_fit_loss_falls_and_writes_the_record(tmp_path, tiny_cfg):
    m = fit(tiny_cfg, tmp_path / "run")
    assert is_complete(tmp_path / "run")
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(m)), "the returned metrics are the recorded ones"
    assert on_disk["n"] == {"train": 128, "valid": 32, "test": 64}
    assert all((tmp_path / "run" / f).is_file() for f in RECORD_FILES)
    hist = (tmp_path / "run" / "history.csv").read_text().splitlines()
    header = hist[0].split(",")
    losses = [float(r.split(",")[header.index("train_loss")]) for r in hist[1:]]
    assert losses[-1] < 0.8 * losses[0], losses
    assert {"valid", "test", "test_ci95", "best_epoch", "criterion"} <= set(m)
    assert m["criterion"] == "valid_mae"
    from miar.model.build import build_model  # the record's parameter count is the model's
    from miar.train import build_splits
    model = build_model(tiny_cfg, build_splits(tiny_cfg)["train"].dims)
    assert m["n_parameters"] == {"total": sum(p.numel() for p in model.parameters()),
                                 "trained": sum(p.numel() for p in model.parameters())}
    assert 1 <= m["best_epoch"] <= m["epochs_run"]
    preds = (tmp_path / "run" / "predictions.csv").read_text().splitlines()
    assert preds[0] == "id,pred,label" and len(preds) == 1 + m["n"]["test"]
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["torch"] and env["wall_time_s"] > 0 and env["device"] == "cpu"


def test_record_config_reruns_the_same_run(tmp_path, tiny_cfg):
    m1 = fit(tiny_cfg, tmp_path / "a")
    cfg2 = C.load(str(tmp_path / "a" / "config.yaml"))
    assert cfg2 == tiny_cfg
    assert fit(cfg2, tmp_path / "b")["test"] == m1["test"]


def test_gate_means_are_recorded(tmp_path, tiny_cfg):
    cfg = C.merge(tiny_cfg, {"model": {"gate": True}, "train": {"epochs": 2}})
    m = fit(cfg, tmp_path / "g")
    assert set(m["gate_mean_test"]) == {"text", "audio", "vision", "fused"}
    assert abs(sum(m["gate_mean_test"].values()) - 1) < 1e-4


SCRIPT = """
import json, sys
from miar import config as C
from miar.train import fit
cfg = C.load("smoke", overrides=["train.progress=false", "train.epochs=2",
                                 "data.synthetic.n_train=96", "data.synthetic.n_test=32"], seed=5)
print(json.dumps(fit(cfg, sys.argv[1])["test"]))
"""


def test_same_seed_identical_metrics_across_processes(tmp_path):
    outs = [subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / f"r{i}")], capture_output=True,
                           text=True, check=True, timeout=300).stdout.strip().splitlines()[-1] for i in range(2)]
    assert json.loads(outs[0]) == json.loads(outs[1])


@pytest.mark.realdata
def test_real_mosi_one_seed(tmp_path, mosi_root):
    cfg = C.load("mosi_bc_miar", overrides=["train.progress=false", "train.epochs=6"], seed=1111)
    m = fit(cfg, tmp_path / "mosi")
    assert m["n"] == {"train": 1221, "valid": 226, "test": 752}
    assert m["test"]["has0_acc2"] > 0.621, "MIAR should beat the majority class (0.621) on the bc test split"
    assert m["test"]["corr"] > 0.4


def test_resume_after_interruption_gives_the_uninterrupted_metrics(tmp_path, tiny_cfg, monkeypatch):
    from miar.train import Trainer
    full = fit(tiny_cfg, tmp_path / "full")
    real_epoch, calls = Trainer.epoch, {"n": 0}

    def dying_epoch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process dies during epoch 3
        return real_epoch(*a, **k)

    monkeypatch.setattr(Trainer, "epoch", dying_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_cfg, tmp_path / "cut")
    assert (tmp_path / "cut" / "checkpoint.pt").is_file() and not is_complete(tmp_path / "cut")
    monkeypatch.setattr(Trainer, "epoch", real_epoch)
    resumed = fit(tiny_cfg, tmp_path / "cut", resume=True)
    assert resumed["test"] == full["test"] and resumed["best_epoch"] == full["best_epoch"]
    assert not (tmp_path / "cut" / "checkpoint.pt").exists()


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path, tiny_cfg):
    fit(C.merge(tiny_cfg, {"train": {"epochs": 1}}), tmp_path / "r")
    (tmp_path / "r" / "metrics.json").unlink()
    import torch
    torch.save({"config": "other: 1\n"}, tmp_path / "r" / "checkpoint.pt")
    with pytest.raises(C.ConfigError, match="different config"):
        fit(tiny_cfg, tmp_path / "r", resume=True)


def test_read_only_run_dir_fails_before_training(tmp_path, tiny_cfg):
    from miar.records import RecordError
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os
        if os.access(ro, os.W_OK) and os.geteuid() == 0:
            # root ignores permission bits; simulate a read-only directory with a path under a file
            blocker = tmp_path / "file"
            blocker.write_text("x")
            target = blocker / "run"
        else:
            target = ro / "run"
        with pytest.raises(RecordError, match="cannot write the run record"):
            fit(tiny_cfg, target)
    finally:
        ro.chmod(0o700)


def test_full_disk_fails_before_training(tmp_path, tiny_cfg, monkeypatch):
    import shutil as sh

    from miar import atomic as records
    from miar.records import RecordError
    monkeypatch.setattr(records.shutil, "disk_usage", lambda p: sh._ntuple_diskusage(10, 10, 1024))
    with pytest.raises(RecordError, match="MiB free"):
        fit(tiny_cfg, tmp_path / "full")
    assert not (tmp_path / "full" / "metrics.json").exists()
