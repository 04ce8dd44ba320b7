"""Interrupted and concurrent sweeps: a lock, complete records never modified, SIGKILL then rerun."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from miar.config import ConfigError
from miar.records import is_complete
from miar.study.executor import run_sweep
from miar.study.integrity import notebook_problem
from miar.study.lock import SweepLocked, results_lock

REPO = Path(__file__).resolve().parents[2]
TINY = ["train.epochs=1", "data.synthetic.n_train=64", "data.synthetic.n_valid=32", "data.synthetic.n_test=32",
        "train.progress=false"]


def write_sweep(path: Path, seeds=(1, 2, 3), extra=()) -> Path:
    path.write_text(json.dumps({"notebook": "train.ipynb", "seeds": list(seeds),
                                "runs": [{"experiment": "smoke", "overrides": TINY + list(extra)}]}))
    return path


def digest(run_dir: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.iterdir())}


def env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def test_second_sweep_on_the_same_results_is_refused(tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml")
    with results_lock(tmp_path / "results"):
        with pytest.raises(SweepLocked, match="another sweep is running.*pid"):
            run_sweep(str(sweep), results=tmp_path / "results", progress=False)
    r = subprocess.run([sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results",
                        str(tmp_path / "results"), "--dry-run"], capture_output=True, text=True, env=env(), timeout=300)
    assert r.returncode == 0  # a dry run reads, it takes no lock


def test_sigkill_mid_sweep_then_rerun_records_every_run_exactly_once(tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml")
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results", str(results)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first, first_nb = results / "runs" / "smoke" / "s1", results / "notebooks" / "smoke" / "s1.ipynb"
    deadline = time.time() + 240
    while not (is_complete(first) and notebook_problem(first_nb) is None) and time.time() < deadline:
        time.sleep(0.2)
    assert is_complete(first) and notebook_problem(first_nb) is None, "the first run never completed"
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep, its worker and its kernel, mid-sweep
    proc.wait(timeout=30)
    time.sleep(2)  # an orphaned kernel notices its parent died and exits
    # complete: the record and the executed notebook (a record whose notebook was still being written is redone)
    done_before = {d.name: digest(d) for d in (results / "runs" / "smoke").iterdir() if is_complete(d)
                   and notebook_problem(results / "notebooks" / "smoke" / f"{d.name}.ipynb") is None}
    assert 1 <= len(done_before) < 3

    r = subprocess.run(cmd, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = sorted(d.name for d in (results / "runs" / "smoke").iterdir())
    assert runs == ["s1", "s2", "s3"] and all(is_complete(results / "runs" / "smoke" / k) for k in runs)
    for name, files in done_before.items():  # completed records were not touched by the rerun
        assert digest(results / "runs" / "smoke" / name) == files
    assert sorted(p.name for p in (results / "notebooks" / "smoke").iterdir() if p.suffix == ".ipynb") == [
        "s1.ipynb", "s2.ipynb", "s3.ipynb"]
    leftovers = [p.name for p in (results / "notebooks" / "smoke").iterdir() if p.suffix != ".ipynb"]
    assert leftovers == [], leftovers


def test_complete_record_of_another_config_is_never_overwritten(tmp_path):
    results = tmp_path / "results"
    run_dir = results / "runs" / "smoke" / "s1"
    run_dir.mkdir(parents=True)
    for f in ("history.csv", "predictions.csv", "env.json"):
        (run_dir / f).write_text("x\n")
    (run_dir / "config.yaml").write_text("name: something else\n")
    (run_dir / "metrics.json").write_text('{"test": {}}')
    before = digest(run_dir)
    with pytest.raises(ConfigError, match="never overwritten.*--redo-changed"):
        run_sweep(str(write_sweep(tmp_path / "s.yaml", seeds=(1,))), results=results, progress=False)
    assert digest(run_dir) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_only_the_sweep_process_leaves_no_orphan_writer(tmp_path):
    """SIGKILL to the sweep's main process alone: its workers and kernels must die with it."""
    sweep = write_sweep(tmp_path / "s.yaml", seeds=(1, 2))
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results", str(results), "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((results / "notebooks").rglob("*.ipynb")):
        time.sleep(0.2)  # a kernel is running a notebook
    started = list((results / "notebooks").rglob("*.ipynb"))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert started, "the sweep never started a notebook: nothing was tested"
    time.sleep(5)  # ipykernel notices a dead parent within a second or two
    assert processes_in(tmp_path) == [], "workers or kernels outlived the sweep"


def processes_in(directory: Path) -> list[str]:
    """Command lines of live processes whose working directory is ``directory`` (Linux /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if Path(os.readlink(proc / "cwd")) == directory:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except OSError:
            continue
    return found
