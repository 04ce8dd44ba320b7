"""Issue 12 through the installed entry point: ``python -m miar.cli`` in a subprocess, one fault of each kind.
Each case asserts exit 2, exactly one ``error: ...`` line on stderr naming what failed, and not one file
created or changed anywhere under the test directory (the other test_faults_* files run the same faults
in-process, many more instances of each)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from faultkit import TINY, one_line, run, snapshot

from miar import config as C
from miar.train import fit


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("cli") / "results"
    fit(C.load("smoke", overrides=TINY, seed=1111), results / "runs" / "smoke" / "s1111")
    return results


def _hostile_sweep(tmp: Path, record: Path) -> tuple[list, str]:
    (tmp / "miar" / "experiments" / "smoke" / "s1").mkdir(parents=True)  # where the escape would land
    (tmp / "miar" / "experiments" / "smoke" / "s1" / "keep.txt").write_text("precious")
    (tmp / "s.yaml").write_text(json.dumps({"seeds": [1], "runs": [
        {"experiment": "../../miar/experiments/smoke", "overrides": TINY}]}))
    (tmp / "results").mkdir()
    return ["sweep", tmp / "s.yaml", "--results", tmp / "results"], "experiment"


def _copied_record(tmp: Path, record: Path) -> tuple[list, str]:
    shutil.copytree(record, tmp / "results")
    shutil.copytree(tmp / "results" / "runs" / "smoke" / "s1111", tmp / "results" / "runs" / "smoke" / "s1111-copy")
    return ["collect", "--results", tmp / "results"], "s1111-copy"


def _empty_test_block(tmp: Path, record: Path) -> tuple[list, str]:
    shutil.copytree(record, tmp / "results")
    m = tmp / "results" / "runs" / "smoke" / "s1111" / "metrics.json"
    m.write_text(json.dumps({**json.loads(m.read_text()), "test": {}}))
    return ["collect", "--results", tmp / "results"], "metrics.json"


def _non_utf8_config(tmp: Path, record: Path) -> tuple[list, str]:
    (tmp / "config.yaml").write_bytes(b"name: \xff\n")
    return ["train", tmp / "config.yaml", "--run-dir", tmp / "run"], "UTF-8"


def _complete_run_dir(tmp: Path, record: Path) -> tuple[list, str]:
    shutil.copytree(record / "runs" / "smoke" / "s1111", tmp / "run")
    return ["train", "smoke", *sum((["--set", o] for o in TINY), []), "--seed", "1111", "--run-dir", tmp / "run"], \
        "--overwrite"


def _empty_mosi_dir(tmp: Path, record: Path) -> tuple[list, str]:
    (tmp / "data" / "CMU-MOSI").mkdir(parents=True)
    return ["data", "check", tmp / "data"], "CMU-MOSI"


CASES = {
    "sweep entry escaping --results": _hostile_sweep,
    "train name=../x": lambda tmp, rec: (["train", "smoke", "--set", "name=../x"], "name"),
    "train epochs 0": lambda tmp, rec: (["train", "smoke", "--set", "train.epochs=0"], "train.epochs"),
    "train d_model 1e9": lambda tmp, rec: (["train", "smoke", "--set", "model.d_model=1000000000"], "model.d_model"),
    "train missing data": lambda tmp, rec: (["train", "smoke", "--set", "data.source=mmsa",
                                             "--set", "data.path=none.pkl"], "none.pkl"),
    "collect a copied record": _copied_record,
    "collect an empty test block": _empty_test_block,
    "train from a non-UTF-8 config": _non_utf8_config,
    "train into a complete record": _complete_run_dir,
    "data check on an empty CMU-MOSI/": _empty_mosi_dir,
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_fault_is_one_line_exit_2_nothing_written(record, tmp_path, case):
    argv, needle = CASES[case](tmp_path, record)
    before = snapshot(tmp_path)
    r = run(argv, cwd=tmp_path)
    one_line(r.returncode, r.stderr, needle)
    assert snapshot(tmp_path) == before


def test_cli_on_a_tiny_full_disk(tmp_path):
    """A real tmpfs of 1 MiB: the run's free-space check refuses before training, naming the directory."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, timeout=30).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        r = run(["train", "smoke", "--set", "train.epochs=1", "--run-dir", mnt / "run"], cwd=tmp_path)
        one_line(r.returncode, r.stderr, str(mnt / "run"), "MiB free")
        assert not (mnt / "run").exists()  # the directory the check made is gone again
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, timeout=30)
