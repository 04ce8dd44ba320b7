"""Issue 12, class 3: every fault is one line naming the file (or key), exit 2, and nothing half-written.

Unreadable files (a permission error injected into ``open``: the tests may run as root, who ignores
permission bits), feature caches that are empty, of another encoder or width, non-finite or with lengths
beyond their tokens, run records that are not UTF-8 or not YAML/JSON, checkpoints and weights with the wrong
contents, a full disk (ENOSPC injected at each record file; and a real full tmpfs where the tests may mount
one), a read-only results folder for ``sweep``, ``collect`` and ``features`` (a read-only tmpfs), absurd sizes.
"""

import builtins
import contextlib
import errno
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from faultkit import TINY, main, one_line, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from miar import config as C
from miar.data.batch import DataError
from miar.data.text_features import ENCODER_DIMS, features_path, load_features, write_npz
from miar.records import RECORD_FILES
from miar.train import fit

SETS = sum((["--set", o] for o in TINY), [])


@contextlib.contextmanager
def denied(name: str, err: int = errno.EACCES):
    """While inside, opening any file whose name ends in ``name`` fails as the OS would (EACCES by default)."""
    real = io.open

    def fake(file, *a, **kw):
        if isinstance(file, (str, os.PathLike)) and str(file).endswith(name):
            raise OSError(err, os.strerror(err), str(file))
        return real(file, *a, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "open", fake)
        mp.setattr(io, "open", fake)
        yield


# ----------------------------------------------------------------------------- unreadable files

def test_unreadable_experiment_yaml(tmp_path, monkeypatch):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("base: smoke\n")
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    with denied("exp.yaml"):
        rc, _, err = main(["train", cfg])
    one_line(rc, err, "exp.yaml", "Permission denied")
    assert snapshot(tmp_path) == before


def test_unreadable_pickle(tmp_path):
    (tmp_path / "d.pkl").write_bytes(b"\x80\x04N.")
    with denied("d.pkl"):
        rc, _, err = main(["data", "check", tmp_path / "d.pkl"])
    one_line(rc, err, "d.pkl", "Permission denied")


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["text_train0.csv", "OpinionLevelSentiment.csv", "transcripts.csv"])
def test_unreadable_data_file(mosi_root, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with denied(name):
        rc, _, err = main(["data", "check", mosi_root])
    one_line(rc, err, name, "Permission denied")
    with denied(name):
        rc, _, err = main(["train", "mosi", "--set", "train.epochs=1", "--run-dir", "run"])
    one_line(rc, err, name, "Permission denied")
    assert snapshot(tmp_path) == {".": "dir"}


@pytest.mark.parametrize("name", ["metrics.json", "config.yaml", "predictions.csv", "env.json"])
def test_unreadable_record_file_in_collect(record, tmp_path, name):
    results = tmp_path / "results"
    shutil.copytree(record, results)
    before = snapshot(results)
    with denied(name):
        rc, _, err = main(["collect", "--results", results])
    one_line(rc, err, name)
    assert snapshot(results) == before


# ----------------------------------------------------------------------------- feature caches

def _cache(n: int = 3, d: int = 64, length: int = 4, encoder: str = "static", **change) -> dict:
    rng = np.random.default_rng(0)
    arrays = dict(ids=np.array([f"v_{i}" for i in range(n)]), sentence=rng.normal(size=(n, d)).astype(np.float32),
                  tokens=rng.normal(size=(n, length, d)).astype(np.float16),
                  lengths=np.full(n, min(length, 2), dtype=np.int64), encoder=np.array(encoder), dim=np.array(d))
    arrays.update(change)
    return arrays


def _nan_at(a: np.ndarray, value: float) -> np.ndarray:
    a = a.copy()
    a.flat[len(a.flat) // 2] = value
    return a


CACHES = {  # what is wrong -> (the arrays written, what the error says)
    "no rows": (_cache(n=0), "empty"),
    "zero width": (_cache(sentence=np.zeros((3, 0), np.float32)), "empty"),
    "other encoder": (_cache(encoder="minilm"), "'minilm'"),
    "other width": (_cache(d=32), "width"),
    "stored dim disagrees": (_cache(dim=np.array(384)), "width"),
    "nan in sentence": (_cache(sentence=_nan_at(_cache()["sentence"], np.nan)), "non-finite"),
    "inf in sentence": (_cache(sentence=_nan_at(_cache()["sentence"], np.inf)), "non-finite"),
    "nan in tokens": (_cache(tokens=_nan_at(_cache()["tokens"], np.nan)), "non-finite"),
    "lengths beyond tokens": (_cache(lengths=np.array([2, 9, 2])), "lengths"),
    "negative lengths": (_cache(lengths=np.array([2, -1, 2])), "lengths"),
    "ids short": (_cache(ids=np.array(["a"])), "inconsistent"),
    "tokens of another width": (_cache(tokens=np.zeros((3, 4, 8), np.float16)), "inconsistent"),
}


@pytest.mark.parametrize("what", list(CACHES))
def test_bad_feature_cache_is_one_data_error(tmp_path, what):
    arrays, needle = CACHES[what]
    write_npz(features_path("static", tmp_path), **arrays)
    with pytest.raises(DataError, match=needle) as e:
        load_features("static", tmp_path)
    assert "\n" not in str(e.value) and "mosi_static.npz" in str(e.value)


def test_zero_byte_cache_is_one_data_error(tmp_path):
    features_path("static", tmp_path).write_bytes(b"")
    with pytest.raises(DataError, match="unreadable feature cache"):
        load_features("static", tmp_path)


@settings(max_examples=60, deadline=None)
@given(encoder=st.sampled_from(sorted(ENCODER_DIMS)), stored=st.sampled_from(sorted(ENCODER_DIMS)),
       d=st.sampled_from([8, 64, 384, 768]), bad=st.sampled_from([None, np.nan, np.inf, -np.inf]))
def test_a_cache_loads_only_when_it_is_what_was_asked(tmp_path_factory, encoder, stored, d, bad):
    tmp = tmp_path_factory.mktemp("cache")
    arrays = _cache(d=d, encoder=stored)
    if bad is not None:
        arrays["sentence"] = _nan_at(arrays["sentence"], bad)
    write_npz(features_path(encoder, tmp), **arrays)
    ok = stored == encoder and d == ENCODER_DIMS[encoder] and bad is None
    if ok:
        assert load_features(encoder, tmp)["dim"] == d
    else:
        with pytest.raises(DataError):
            load_features(encoder, tmp)


@pytest.mark.realdata
@pytest.mark.parametrize("what", ["other encoder", "nan in sentence", "nan in tokens", "lengths beyond tokens"])
def test_train_on_a_bad_cache_is_one_line(mosi_root, tmp_path, monkeypatch, what):
    from miar.data.mosi import read_mosi
    arrays, needle = CACHES[what]
    n = len(read_mosi(mosi_root).ids)
    arrays = {k: (np.resize(v, (n, *v.shape[1:])) if v.ndim else v) for k, v in arrays.items()}
    arrays["ids"] = np.array(read_mosi(mosi_root).ids)
    write_npz(features_path("static", tmp_path / "cache"), **arrays)
    monkeypatch.setenv("MIAR_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    tokens = ["--set", "data.text_granularity=token", "--set", "data.context=0"] if "tokens" in what else []
    rc, _, err = main(["train", "mosi", "--set", "data.text_features=static", "--set", "train.epochs=1",
                       *tokens, "--run-dir", "run"])
    one_line(rc, err, "mosi_static.npz", needle)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- records, checkpoints, weights

@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("io") / "results"
    fit(C.load("smoke", overrides=TINY + ["train.save_model=true"], seed=1111), results / "runs" / "smoke" / "s1111")
    return results


@pytest.mark.parametrize("content", [b"name: \xff\xfe\n", b"name: [unclosed\n", b"- a list\n"])
def test_train_from_a_broken_record_config(tmp_path, content):
    (tmp_path / "config.yaml").write_bytes(content)
    rc, _, err = main(["train", tmp_path / "config.yaml", "--run-dir", tmp_path / "run"])
    one_line(rc, err, "config.yaml")
    assert not (tmp_path / "run").exists()


def _checkpoint(tmp_path: Path) -> tuple[C.Config, Path, dict]:
    """A run interrupted after its first epoch: (config, run dir, the checkpoint's real state)."""
    from miar.data import build_splits
    from miar.train import Progress, Trainer
    cfg = C.load("smoke", overrides=TINY, seed=1111)
    splits = build_splits(cfg)
    run = tmp_path / "run"
    run.mkdir()
    Trainer(cfg, splits["train"].dims, len(splits["train"]), torch.device("cpu")).checkpoint(run, 1, Progress())
    return cfg, run, torch.load(run / "checkpoint.pt", weights_only=True)


CHECKPOINTS = {
    "random bytes": lambda s: b"\x00garbage",
    "not a dict": lambda s: [1, 2, 3],
    "keys missing": lambda s: {"config": s["config"], "epoch": 1},
    "another model's weights": lambda s: {**s, "model": {"w": torch.zeros(3)}},
    "progress of another shape": lambda s: {**s, "progress": {"nope": 1}},
    "optimizer state of another model": lambda s: {**s, "opt": {"state": {}, "param_groups": []}},
    "epoch not a number": lambda s: {**s, "epoch": "one"},
}


@pytest.mark.parametrize("what", list(CHECKPOINTS))
def test_checkpoint_with_wrong_contents_is_one_line(tmp_path, what):
    cfg, run, state = _checkpoint(tmp_path)
    payload = CHECKPOINTS[what](state)
    if isinstance(payload, bytes):
        (run / "checkpoint.pt").write_bytes(payload)
    else:
        torch.save(payload, run / "checkpoint.pt")
    before = snapshot(run)
    (tmp_path / "exp.yaml").write_text(C.dump(cfg))
    rc, _, err = main(["train", tmp_path / "exp.yaml", "--run-dir", run, "--resume"])
    one_line(rc, err, "checkpoint.pt")
    assert snapshot(run) == before


@pytest.mark.parametrize("weights", [b"not a zip", "other"])
def test_weights_with_wrong_contents_are_one_line(record, tmp_path, weights):
    from miar.study.analysis import load_run
    run = tmp_path / "s1111"
    shutil.copytree(record / "runs" / "smoke" / "s1111", run)
    if weights == "other":
        torch.save({"w": torch.zeros(2)}, run / "model.pt")
    else:
        (run / "model.pt").write_bytes(weights)
    with pytest.raises(C.ConfigError, match="model.pt") as e:
        load_run(run)
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- full disk

@pytest.mark.parametrize("name", [*RECORD_FILES, "checkpoint.pt"])
def test_full_disk_at_each_record_file(tmp_path, monkeypatch, name):
    """ENOSPC while a record file is written: one line naming that file, no temporary, not complete."""
    from miar import atomic as records
    real = os.replace

    def replace(src, dst, *a, **kw):
        if str(dst).endswith(name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as os.write raises it: no file name
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(records.os, "replace", replace)
    rc, _, err = main(["train", "smoke", *SETS, "--run-dir", tmp_path / "run"])
    one_line(rc, err, name, "No space left on device")
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


@pytest.fixture
def tmpfs(tmp_path):
    """A mount point for a tmpfs of our own (root only; skipped where mounting is not allowed)."""
    point = tmp_path / "mnt"
    point.mkdir()
    mounted = []

    def mount(size: str = "4m", ro: bool = False) -> Path:
        opts = f"size={size}" + (",ro" if ro else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True, timeout=30)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
        mounted.append(point)
        return point

    def remount_ro() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True, timeout=30)

    mount.remount_ro = remount_ro
    yield mount
    for p in mounted:
        subprocess.run(["umount", "-l", str(p)], check=False, timeout=30)


def test_really_full_disk_in_collect(record, tmpfs):
    root = tmpfs("2m")
    results = root / "results"
    shutil.copytree(record, results, ignore=shutil.ignore_patterns("model.pt", "checkpoint.pt"))
    assert main(["collect", "--results", results])[0] == 0  # the tables exist; the next collect replaces them
    (results / "tables" / "runs.csv").write_text("old\n")  # so it has something to write (identical files are skipped)
    with open(root / "filler", "wb", buffering=0) as f:  # fill the disk to the last block (unbuffered:
        try:                                              # closing the file then has nothing left to flush)
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    before = snapshot(results)
    rc, _, err = main(["collect", "--results", results])
    one_line(rc, err, str(results), "No space left on device")
    assert snapshot(results) == before  # no table half-written, no temporary left


@pytest.mark.parametrize("fail_at", ["runs.csv", "comparisons.csv", "summary.json"])
def test_collect_replaces_its_tables_all_or_none(record, tmp_path, monkeypatch, fail_at):
    """ENOSPC while one output is staged: every table keeps its old content (they never disagree)."""
    from miar import atomic
    results = tmp_path / "results"
    shutil.copytree(record, results)
    assert main(["collect", "--results", results])[0] == 0
    outputs = [*sorted((results / "tables").iterdir()), results / "summary.json"]
    for p in outputs:
        p.write_text("old\n")
    real = atomic.os.fdopen

    def fdopen(fd, *a, **kw):
        f = real(fd, *a, **kw)
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(f".{fail_at}."):
            f.close()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return f

    monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    rc, _, err = main(["collect", "--results", results])
    one_line(rc, err, fail_at, "No space left on device")
    assert all(p.read_text() == "old\n" for p in outputs)
    assert not [p for p in results.rglob("*.tmp")]


# ----------------------------------------------------------------------------- read-only results

def test_read_only_results_for_sweep(tmpfs, tmp_path):
    results = tmpfs(ro=True)
    sweep = tmp_path / "s.yaml"
    sweep.write_text(json.dumps({"seeds": [1], "runs": [{"experiment": "smoke", "overrides": TINY}]}))
    rc, _, err = main(["sweep", sweep, "--results", results])
    one_line(rc, err, str(results), "Read-only file system")


def test_read_only_results_for_collect(record, tmpfs):
    root = tmpfs("64m")
    shutil.copytree(record, root / "results")
    tmpfs.remount_ro()
    before = snapshot(root)
    rc, _, err = main(["collect", "--results", root / "results"])
    one_line(rc, err, "results", "Read-only file system")
    assert snapshot(root) == before


def test_read_only_cache_for_features(tmpfs, tmp_path):
    cache = tmpfs(ro=True)
    rc, _, err = main(["features", "--encoder", "static", "--cache", cache, "--data", tmp_path])
    one_line(rc, err, str(cache), "Read-only file system")


def test_features_into_a_path_under_a_file(tmp_path):
    """Where no tmpfs can be mounted: a cache path below a regular file cannot be created either."""
    (tmp_path / "file").write_text("x")
    rc, _, err = main(["features", "--encoder", "static", "--cache", tmp_path / "file" / "cache", "--data", tmp_path])
    one_line(rc, err, "file")


# ----------------------------------------------------------------------------- absurd sizes

@pytest.mark.parametrize("override", ["model.d_model=1000000000", "model.head_hidden=10000000000",
                                      "data.synthetic.seq_len=1000000000", "data.synthetic.dims=[100000,5,20]",
                                      "model.n_layers=1000", "data.batch_size=1000000000"])
def test_absurd_sizes_are_refused_before_any_allocation(tmp_path, monkeypatch, override):
    monkeypatch.chdir(tmp_path)
    rc, _, err = main(["train", "smoke", "--set", override])
    one_line(rc, err, override.split("=")[0].split(".")[0])
    assert snapshot(tmp_path) == {".": "dir"}
