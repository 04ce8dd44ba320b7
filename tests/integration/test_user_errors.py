"""Every user error is one line on stderr (``error: ...``) and exit 2, found before work starts, with nothing
written: bad tune, cluster and results arguments, damaged tune storages, config values YAML reads oddly or nests
too deep, data that would crash training, converted folders whose manifest points elsewhere, non-numeric fold
predictions, a checkpoint that cannot be saved and a run that diverges. Each error type of the package derives
from one base that the command line catches."""

from __future__ import annotations

import errno
import importlib
import inspect
import json
import pkgutil
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from faultkit import REPO, TINY, env, main, one_line, snapshot

import miar
from miar import config as C
from miar.errors import UserError

SETS = sum((["--set", o] for o in TINY), [])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- one base


def test_every_error_type_of_the_package_derives_from_the_user_error_base():
    """A new error class anywhere in miar must subclass UserError, or the CLI would let it out as a traceback;
    interrupts (KeyboardInterrupt's kind, such as SIGTERM's) are not errors and unwind to the CLI's exit 130/143."""
    found, outside = [], []
    for info in pkgutil.walk_packages(miar.__path__, "miar."):
        if info.name.endswith("__main__"):  # runs a command on import
            continue
        mod = importlib.import_module(info.name)
        for name, cls in vars(mod).items():
            if inspect.isclass(cls) and issubclass(cls, Exception) and cls.__module__ == mod.__name__:
                found.append(f"{mod.__name__}.{name}")
                if not issubclass(cls, UserError):
                    outside.append(f"{mod.__name__}.{name}")
    assert len(found) >= 14, found  # the walk saw the package's error types (it can fail if it sees none)
    assert outside == []


def test_malformed_comparisons_declaration_is_one_line_exit_2(tmp_path):
    """A broken miar/experiments/comparisons.yaml makes `miar collect` print one line and exit 2 (a copy of the
    package with the broken declaration, run as a user would)."""
    shutil.copytree(REPO / "miar", tmp_path / "pkg" / "miar", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "pkg" / "miar" / "experiments" / "comparisons.yaml").write_text("families: [unclosed\n")
    from miar.train import fit
    results = tmp_path / "results"
    fit(C.load("smoke", overrides=TINY, seed=1111), results / "runs" / "smoke" / "s1111")
    before = snapshot(results)
    p = subprocess.run([sys.executable, "-m", "miar.cli", "collect", "--results", str(results)],
                       cwd=tmp_path, env=env(PYTHONPATH=str(tmp_path / "pkg")), capture_output=True, text=True,
                       timeout=240)
    one_line(p.returncode, p.stderr, "comparisons.yaml")
    assert snapshot(results) == before


# ----------------------------------------------------------------------------- arguments, storages, configs


def _storage_files(tmp: Path) -> None:
    (tmp / "garbage.db").write_text("not a database\n")
    good = tmp / "good.db"
    con = sqlite3.connect(good)
    con.executescript("create table t (x text);" + "".join(f"insert into t values ('{i:0400d}');"
                                                            for i in range(200)))
    con.close()
    (tmp / "truncated.db").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp / "journal.log").write_text('{"op_code": 0}\nnot json\n{"op_code": 1}\n')
    (tmp / "sched.json").write_text("{not json")
    (tmp / "sched2.json").write_text(json.dumps({"address": 5}))
    (tmp / "deep.yaml").write_text("model:\n  d_model: " + "[" * 400 + "]" * 400 + "\n")


ARGS = {  # argv (with {tmp} for the test folder) -> a fragment of the one line
    "tune --seeds -5": (["tune", "smoke", "--seeds", "-5", "--results", "{tmp}/r"], "--seeds"),
    "tune duplicate seeds": (["tune", "smoke", "--seeds", "3", "3", "--results", "{tmp}/r"], "--seeds: 3"),
    "tune --batch 0": (["tune", "smoke", "--batch", "0", "--results", "{tmp}/r"], "--batch"),
    "tune --workers 0": (["tune", "smoke", "--workers", "0", "--results", "{tmp}/r"], "--workers"),
    "tune --trials 0": (["tune", "smoke", "--trials", "0", "--results", "{tmp}/r"], "--trials"),
    "tune --report --confirm-seeds 0": (["tune", "smoke", "--report", "--confirm-seeds", "0", "--results",
                                         "{tmp}/r"], "--confirm-seeds"),
    "tune --report, no study": (["tune", "smoke", "--report", "--results", "{tmp}/r"], "no study"),
    "tune --report, storage file missing": (["tune", "smoke", "--report", "--storage",
                                             "sqlite:///{tmp}/none.db", "--results", "{tmp}/r"], "none.db"),
    "tune --report, journal missing": (["tune", "smoke", "--report", "--storage", "journal:{tmp}/none.log",
                                        "--results", "{tmp}/r"], "none.log"),
    "tune --storage unknown scheme": (["tune", "smoke", "--storage", "foo://bar", "--results", "{tmp}/r"],
                                      "--storage"),
    "tune --storage not SQLite": (["tune", "smoke", "--storage", "sqlite:///{tmp}/garbage.db", "--results",
                                   "{tmp}/r"], "garbage.db"),
    "tune --storage truncated SQLite": (["tune", "smoke", "--storage", "sqlite:///{tmp}/truncated.db",
                                         "--results", "{tmp}/r"], "truncated.db"),
    "tune --report, truncated SQLite": (["tune", "smoke", "--report", "--storage", "sqlite:///{tmp}/truncated.db",
                                         "--results", "{tmp}/r"], "truncated.db"),
    "tune --storage damaged journal": (["tune", "smoke", "--storage", "journal:{tmp}/journal.log", "--results",
                                        "{tmp}/r"], "line 2"),
    "tune --storage in a missing folder": (["tune", "smoke", "--storage", "sqlite:///{tmp}/no/x.db",
                                            "--results", "{tmp}/r"], "no such directory"),
    "tune --results ''": (["tune", "smoke", "--results", ""], "--results"),
    "sweep --results ''": (["sweep", "smoke", "--results", "", "--dry-run"], "--results"),
    "collect --results ''": (["collect", "--results", ""], "--results"),
    "align --results ''": (["align", "--results", ""], "--results"),
    "train --run-dir ''": (["train", "smoke", *SETS, "--run-dir", ""], "--run-dir"),
    "sweep --scheduler foo": (["sweep", "smoke", "--results", "{tmp}/r", "--scheduler", "foo"], "--scheduler"),
    "sweep --scheduler port 0": (["sweep", "smoke", "--results", "{tmp}/r", "--scheduler", "tcp://127.0.0.1:0"],
                                 "--scheduler"),
    "sweep --scheduler nobody listens": (["sweep", "smoke", "--results", "{tmp}/r", "--scheduler",
                                          "tcp://127.0.0.1:{port}"], "cannot reach"),
    "sweep --scheduler-file not JSON": (["sweep", "smoke", "--results", "{tmp}/r", "--scheduler-file",
                                         "{tmp}/sched.json"], "sched.json"),
    "sweep --scheduler-file without address": (["sweep", "smoke", "--results", "{tmp}/r", "--scheduler-file",
                                                "{tmp}/sched2.json"], "address"),
    "tune --scheduler foo": (["tune", "smoke", "--results", "{tmp}/r", "--scheduler", "foo"], "--scheduler"),
    "align --workers 0": (["align", "--results", "{tmp}/r", "--workers", "0"], "--workers"),
    "train deeply nested config": (["train", "{tmp}/deep.yaml", "--run-dir", "{tmp}/run"], "nested deeper"),
    "train deeply nested --set": (["train", "smoke", "--set", "model.d_model=" + "[" * 600 + "]" * 600,
                                   "--run-dir", "{tmp}/run"], "nested deeper"),
    "train --set data.path for synthetic data": (["train", "smoke", "--set", "data.path=/x.pkl", "--run-dir",
                                                  "{tmp}/run"], "data.path"),
    "train --seed -1": (["train", "smoke", "--seed", "-1", "--run-dir", "{tmp}/run"], "seed"),
}


@pytest.mark.parametrize("case", list(ARGS))
def test_bad_argument_is_one_line_exit_2_nothing_written(tmp_path, case):
    """Each bad argument or storage is refused up front: one line naming it, exit 2, no file created or changed
    (no results folder, lock or empty database)."""
    _storage_files(tmp_path)
    argv, needle = ARGS[case]
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{port}", str(_free_port())) for a in argv]
    before = snapshot(tmp_path)
    rc, out, err = main(argv)
    one_line(rc, err, needle)
    assert snapshot(tmp_path) == before


def test_gpus_per_run_without_a_gpu_is_one_line(tmp_path):
    """--gpus-per-run on a machine without enough GPUs is refused before a cluster starts."""
    import torch
    want = (torch.cuda.device_count() if torch.cuda.is_available() else 0) + 1
    rc, _, err = main(["sweep", "smoke", "--results", tmp_path / "r", "--gpus-per-run", str(want)])
    one_line(rc, err, "--gpus-per-run")
    assert not (tmp_path / "r").exists()


def test_exponent_float_override_is_a_float():
    """`--set train.lr=1e-3` (a string to YAML 1.1) is the float 0.001, in overrides and in config files alike;
    a word is still refused."""
    assert C.load("smoke", overrides=["train.lr=1e-3"]).train.lr == 0.001
    assert C.load("smoke", overrides=["loss.weight=5E-1"]).loss.weight == 0.5
    with pytest.raises(C.ConfigError, match="train.lr"):
        C.load("smoke", overrides=["train.lr=fast"])


def test_a_huge_wrong_value_gives_a_short_line(tmp_path):
    """A wrong value of any size is shown cut short: the one line stays readable."""
    rc, _, err = main(["train", "smoke", "--set", "model.d_model=" + str(list(range(5000))),
                       "--run-dir", tmp_path / "run"])
    line = one_line(rc, err, "model.d_model", "expected an integer")
    assert len(line) < 200


# ----------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    from miar.data.convert import convert_pickle
    from miar.data.synthetic import make_synthetic
    from miar.data.synthetic_pickles import write_mmsa_pickle
    tmp = tmp_path_factory.mktemp("conv")
    splits = make_synthetic("mosi", seed=0, n_train=16, n_valid=8, n_test=8, seq_len=4, dims=(6, 3, 4))
    write_mmsa_pickle(splits, tmp / "d.pkl")
    return convert_pickle(tmp / "d.pkl", tmp / "conv")


def _rewrite(folder: Path, split: str, name: str, array: np.ndarray) -> None:
    """Replace one array of a converted folder and make the manifest agree (size, shape, checksum)."""
    from miar.data.convert import sha256_file
    path = folder / split / f"{name}.npy"
    np.save(path, array, allow_pickle=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["splits"][split]["files"][path.name] = {"shape": list(array.shape), "dtype": str(array.dtype),
                                                     "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _nan_features(folder: Path) -> str:
    a = np.load(folder / "train" / "audio.npy")
    a[3, 0, 1] = np.nan
    _rewrite(folder, "train", "audio", a)
    return "non-finite audio"


def _all_false_mask(folder: Path) -> str:
    m = np.load(folder / "valid" / "vision_mask.npy")
    m[2] = False
    _rewrite(folder, "valid", "vision_mask", m)
    return "all false"


def _zero_length_time(folder: Path) -> str:
    for split in ("train", "valid", "test"):
        n = np.load(folder / split / "labels.npy").shape[0]
        _rewrite(folder, split, "audio", np.zeros((n, 0, 3), dtype=np.float32))
        _rewrite(folder, split, "audio_mask", np.zeros((n, 0), dtype=bool))
    return "zero-length time axis"


def _outside_file(folder: Path) -> tuple[str, str]:
    (folder.parent / "secret.npy").write_bytes(b"x" * 10)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["splits"]["train"]["files"]["../../secret.npy"] = {"bytes": 10, "sha256": "0" * 64}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return "secret.npy", "refused"  # not read and then found wrong: refused for its name


def _malformed_entry(folder: Path) -> str:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["splits"]["test"]["files"]["labels.npy"] = "big"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return "malformed entry"


def _malformed_split(folder: Path) -> str:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["splits"]["valid"] = [1, 2]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return "malformed entry"


DATA = {"NaN features": _nan_features, "an all-false mask": _all_false_mask,
        "a zero-length time axis": _zero_length_time, "a manifest naming a file outside": _outside_file,
        "a malformed file entry": _malformed_entry, "a malformed split entry": _malformed_split}


@pytest.mark.parametrize("case", list(DATA))
@pytest.mark.parametrize("command", ["check", "train"])
def test_converted_folder_training_cannot_use_is_refused_by_check_and_train(converted, tmp_path, case, command):
    """`miar data check` and training refuse, with one line, a converted folder that would crash training or
    make the loader read files outside it; nothing is written."""
    folder = tmp_path / "conv"
    shutil.copytree(converted, folder)
    needles = DATA[case](folder)
    before = snapshot(tmp_path)
    argv = (["data", "check", folder] if command == "check" else
            ["train", "smoke", "--set", "data.source=mmsa", "--set", f"data.path={folder}", *SETS,
             "--run-dir", tmp_path / "run"])
    rc, out, err = main(argv)
    one_line(rc, err, *([needles] if isinstance(needles, str) else needles))
    assert snapshot(tmp_path) == before


def test_non_numeric_fold_predictions_are_one_line(tmp_path):
    """A cross-validated fold record whose predictions are not numbers is refused naming its file."""
    from miar.pooled import PoolError, read_fold
    run = tmp_path / "legacy_miar+r0f0" / "s1111"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 1111\ndata: {split: bc_test_cv, cv_repeat: 0, cv_fold: 0, "
                                     "cv_folds: 5}\n")
    (run / "env.json").write_text("{}")
    (run / "predictions.csv").write_text("id,pred,label\na_1,0.5,1.0\na_2,high,-1.0\n")
    with pytest.raises(PoolError, match=r"predictions.csv: pred of a_2 is not a finite number") as e:
        read_fold(run)
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)


# ----------------------------------------------------------------------------- training


def test_full_disk_while_saving_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    """ENOSPC while the checkpoint is written: one line naming checkpoint.pt, exit 2, no record."""
    import tempfile

    import miar.atomic as R
    real = tempfile.mkstemp

    def full(*a, **k):
        if str(k.get("prefix", "")).startswith(".checkpoint.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)
    monkeypatch.setattr(R.tempfile, "mkstemp", full)
    rc, _, err = main(["train", "smoke", *SETS, "--run-dir", tmp_path / "run"])
    one_line(rc, err, "checkpoint.pt", "No space left")
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_out_of_memory_while_saving_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    """MemoryError while the checkpoint is serialised: one line naming checkpoint.pt, exit 2, no record."""
    import miar.run_guards as G

    def oom(*a, **k):
        raise MemoryError
    monkeypatch.setattr(G.torch, "save", oom)
    rc, _, err = main(["train", "smoke", *SETS, "--run-dir", tmp_path / "run"])
    one_line(rc, err, "checkpoint.pt", "out of memory")
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_diverging_training_stops_with_one_line_and_no_record(tmp_path):
    """A loss that becomes NaN stops the run naming it and the epoch; no record is written."""
    rc, _, err = main(["train", "smoke", *SETS, "--set", "train.lr=1e30", "--set", "train.grad_clip=0",
                       "--run-dir", tmp_path / "run"])
    one_line(rc, err, "smoke seed 1111", "diverged at epoch 1")
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_killed_drivers_sqlite_storage_is_not_refused(tmp_path):
    """A SQLite storage that a killed driver left with a hot journal (or that a live driver holds locked) is
    sound, so the storage check lets it through to be recovered, as a resumed search needs."""
    from miar.study.arguments import check_storage
    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    con.executescript("create table t (x text);")
    con.close()
    writer = ("import os, sqlite3, sys\n"
              "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "con.execute('PRAGMA cache_size=1'); con.execute('BEGIN')\n"
              "for i in range(2000): con.execute('insert into t values (?)', ('x' * 500,))\n"
              "os._exit(0)  # killed mid-transaction: the journal stays behind\n")
    subprocess.run([sys.executable, "-c", writer, str(db)], check=True, timeout=60)
    assert (tmp_path / "s.db-journal").is_file() and (tmp_path / "s.db-journal").stat().st_size > 0
    check_storage(f"sqlite:///{db}")
    con = sqlite3.connect(db)  # a writer rolls the journal back: the database was sound
    assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert con.execute("select count(*) from t").fetchone()[0] == 0
    con.execute("BEGIN EXCLUSIVE")  # held by a live driver: not judged either
    try:
        check_storage(f"sqlite:///{db}", must_exist=True)
    finally:
        con.rollback()
        con.close()


def test_gpus_per_run_on_a_cluster_without_gpu_workers_is_one_line(tmp_path):
    """--gpus-per-run on an existing cluster whose workers declare no GPU is refused on connecting, instead of
    runs waiting forever for a GPU."""
    from cluster import Cluster
    c = Cluster(tmp_path, env())
    try:
        c.start_worker()
        c.wait_for_workers(1)
        rc, _, err = main(["sweep", "smoke", "--results", tmp_path / "r", "--scheduler", c.address,
                           "--gpus-per-run", "1"])
        one_line(rc, err, "--gpus-per-run 1", "no worker")
    finally:
        c.close()
