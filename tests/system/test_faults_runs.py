"""Issue 12, classes 4-7 and the extras: partial artefacts, writers that exclude each other, Ctrl-C stops a sweep,
``miar data check`` on the directory that holds ``CMU-MOSI/``, no run directory before the data loads."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from faultkit import TINY, env, main, one_line, run, snapshot
from filelock import FileLock
from hypothesis import given, settings
from hypothesis import strategies as st

from miar import config as C
from miar.records import RecordError
from miar.study import notebook_io
from miar.study.integrity import notebook_problem, record_problem

SETS = sum((["--set", o] for o in TINY), [])


SLOW = [*TINY, "train.epochs=8", "data.synthetic.n_train=1024"]


def _family(pid: int) -> tuple[list[int], list[int]]:
    """(every descendant of ``pid``, those that are Jupyter kernels); empty lists once it is gone."""
    out, kernels = [], []
    try:
        for p in psutil.Process(pid).children(recursive=True):
            out.append(p.pid)
            try:
                if "ipykernel" in " ".join(p.cmdline()):
                    kernels.append(p.pid)
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return out, kernels


def _sweep(path: Path, seeds, overrides=TINY) -> Path:
    path.write_text(json.dumps({"notebook": "train.ipynb", "seeds": list(seeds),
                                "runs": [{"experiment": "smoke", "overrides": list(overrides)}]}))
    return path


def _digest(d: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


# ----------------------------------------------------------------------------- 4. partial artefacts

NB = {"cells": [{"cell_type": "code", "execution_count": 1, "id": "a", "metadata": {}, "outputs": [],
                 "source": "x = 1"}],
      "metadata": {"papermill": {"output_path": "tmp", "parameters": {}}}, "nbformat": 4, "nbformat_minor": 5}


@settings(max_examples=80, deadline=None)
@given(cut=st.floats(0, 1, exclude_max=True))
def test_a_truncated_notebook_is_never_whole(tmp_path_factory, cut):
    text = json.dumps(NB, indent=1)
    path = tmp_path_factory.mktemp("nb") / "s1.ipynb"
    path.write_text(text[:int(cut * len(text))])
    assert notebook_problem(path) is not None


def test_notebook_written_whole_or_not_at_all(tmp_path, monkeypatch):
    import papermill

    out = tmp_path / "s1.ipynb"

    def torn(nb, output, **kw):  # papermill's last save hits a full disk half-way
        Path(output).write_text(json.dumps(NB)[:40])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(papermill, "execute_notebook", torn)
    with pytest.raises(OSError):
        notebook_io.execute_notebook("in.ipynb", out)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no torn notebook, no temporary

    def whole(nb, output, **kw):
        Path(output).write_text(json.dumps(NB))

    monkeypatch.setattr(papermill, "execute_notebook", whole)
    notebook_io.execute_notebook("in.ipynb", out)
    assert notebook_problem(out) is None and [p.name for p in tmp_path.iterdir()] == ["s1.ipynb"]
    assert json.loads(out.read_text())["metadata"]["papermill"]["output_path"] == str(out)
    notebook_io.temporary(out).write_text("{trunc")
    with pytest.raises(RecordError, match="not written whole"):
        notebook_io.finalize(notebook_io.temporary(out), out)
    assert notebook_problem(out) is None and not notebook_io.temporary(out).exists()  # the old one stays


def test_truncated_notebook_beside_a_complete_record_is_redone(tmp_path, monkeypatch):
    """A full disk used to leave a truncated notebook beside a complete record; the rerun skipped the run
    and collect refused the results folder from then on."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])
    sweep, results = _sweep(tmp_path / "s.yaml", [1, 2]), tmp_path / "results"
    assert main(["sweep", sweep, "--results", results])[0] == 0
    nb = results / "notebooks" / "smoke" / "s1.ipynb"
    nb.write_bytes(nb.read_bytes()[: nb.stat().st_size // 2])
    kept = _digest(results / "runs" / "smoke" / "s2")
    rc, out, _ = main(["sweep", sweep, "--results", results, "--dry-run"])
    assert "incomplete smoke/s1" in " ".join(out.split()) and "done smoke/s2" in " ".join(out.split())
    assert main(["sweep", sweep, "--results", results])[0] == 0
    assert notebook_problem(nb) is None and record_problem(results / "runs" / "smoke" / "s1") is None
    assert _digest(results / "runs" / "smoke" / "s2") == kept  # the complete run was not touched
    assert main(["collect", "--results", results])[0] == 0


# ----------------------------------------------------------------------------- 5. writers exclude each other

def test_train_refuses_a_complete_record_unless_overwrite(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "smoke", *SETS, "--run-dir", run_dir])[0] == 0
    before = snapshot(run_dir)
    assert ".lock" not in before  # the writer's lock goes with it
    rc, _, err = main(["train", "smoke", *SETS, "--set", "loss.weight=0", "--run-dir", run_dir])
    one_line(rc, err, str(run_dir), "--overwrite")
    assert snapshot(run_dir) == before
    rc, _, err = main(["train", "smoke", *SETS, "--run-dir", run_dir, "--resume"])
    one_line(rc, err, "--overwrite")
    assert main(["train", "smoke", *SETS, "--set", "loss.weight=0", "--run-dir", run_dir, "--overwrite"])[0] == 0
    assert "weight: 0.0" in (run_dir / "config.yaml").read_text() and record_problem(run_dir, identity=False) is None


def test_train_refuses_a_run_dir_another_writer_holds(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with FileLock(run_dir / ".lock", timeout=0):
        before = snapshot(run_dir)
        rc, _, err = main(["train", "smoke", *SETS, "--run-dir", run_dir])
        one_line(rc, err, "another process is writing")
        assert snapshot(run_dir) == before


def test_two_concurrent_trains_into_one_dir_one_wins(tmp_path):
    """Both used to succeed and the last writer won; now exactly one writes the record."""
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "miar.cli", "train", "smoke", "--set", "train.progress=false",
            "--set", "train.epochs=3", "--run-dir", str(run_dir)]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True) for _ in range(2)]
    outs = []  # (exit code, stderr) of each
    try:
        for p in procs:
            err = p.communicate(timeout=300)[1]
            outs.append((p.returncode, err))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
    assert sorted(rc for rc, _ in outs) == [0, 2], outs
    one_line(*next(o for o in outs if o[0] == 2))
    assert record_problem(run_dir, identity=False) is None


# ----------------------------------------------------------------------------- 6. Ctrl-C stops a sweep

def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.parametrize("target", ["sweep process",  # kill -INT <pid>; a terminal's Ctrl-C signals the group:
                                    pytest.param("process group", marks=pytest.mark.slow)])
def test_sigint_stops_a_sweep_promptly_and_the_rerun_completes_it(tmp_path, target):
    seeds = list(range(1, 7))
    # runs of a few seconds each, so the queue outlasts the time it takes to see the first record and signal
    # (with one-second runs a loaded machine finished all of them first: exit 0, not 130)
    sweep, results = _sweep(tmp_path / "s.yaml", seeds, SLOW), tmp_path / "results"
    cmd = [sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results", str(results)]
    # SIGINT back to its default in the child: a test run started in the background by a non-interactive shell
    # (`make test &`) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt (seen in CI runs)
    # stderr to a file, not a pipe read only at the end: the workers' and kernels' warnings while they are
    # stopped could fill a pipe's 64 KiB and block the sweep writing to it
    errfile = (tmp_path / "sweep.err").open("w")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**env(), "PYTHONFAULTHANDLER": "1"}, stdout=subprocess.DEVNULL,
                            stderr=errfile, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline, family, kernels = time.time() + 120, [], []
        first = results / "runs" / "smoke" / "s1" / "metrics.json"
        while time.time() < deadline and not first.exists():
            if not kernels:  # the workers and the kernel, noted while the first run trains (this can take
                family, kernels = _family(proc.pid)  # seconds on a loaded machine: not between record and signal)
            time.sleep(0.1)
        assert first.exists(), "the first run never finished"
        t0 = time.time()
        os.kill(proc.pid, signal.SIGINT) if target == "sweep process" else os.killpg(proc.pid, signal.SIGINT)
        family = sorted(set(family) | set(_family(proc.pid)[0]))  # and whatever started since
        assert kernels, "no kernel found under the sweep"
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # say where it hangs: faulthandler prints every thread's stack on SIGABRT
            os.kill(proc.pid, signal.SIGABRT)
            proc.wait(timeout=10)
            errfile.close()
            pytest.fail(f"the sweep did not stop within 30 s of SIGINT; its threads:\n"
                        f"{(tmp_path / 'sweep.err').read_text()[-6000:]}")
        stopped = time.time() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        errfile.close()
    err = (tmp_path / "sweep.err").read_text()
    assert rc == 130, err[-2000:]
    assert stopped < 30, f"took {stopped:.1f} s to stop"  # a guard against hanging; loaded 2-core CI: ~3-16 s
    time.sleep(0.5)
    assert _alive(family) == [], "orphan workers or kernels"
    done = [s for s in seeds if record_problem(results / "runs" / "smoke" / f"s{s}") is None
            and notebook_problem(results / "notebooks" / "smoke" / f"s{s}.ipynb") is None]
    assert len(done) < len(seeds), "every queued run executed before the sweep stopped"
    if target == "sweep process":
        r = run(["sweep", sweep, "--results", results], cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        assert f"{len(seeds) - len(done)} to run" in r.stdout
        for s in seeds:
            assert record_problem(results / "runs" / "smoke" / f"s{s}") is None
            assert notebook_problem(results / "notebooks" / "smoke" / f"s{s}.ipynb") is None


# ----------------------------------------------------------------------------- 7. data check on $MIAR_DATA

@pytest.mark.realdata
def test_data_check_on_the_directory_holding_cmu_mosi(mosi_root):
    for path in (mosi_root, mosi_root / "CMU-MOSI"):
        rc, out, err = main(["data", "check", path])
        assert rc == 0, err
        assert "OK" in out and "test: 752" in out


def test_data_check_on_a_directory_without_mosi_is_one_line(tmp_path):
    (tmp_path / "CMU-MOSI").mkdir()
    rc, _, err = main(["data", "check", tmp_path])
    one_line(rc, err, "CMU-MOSI")


# ----------------------------------------------------------------------------- extras

@pytest.mark.parametrize("bad", [["--set", "data.source=mmsa", "--set", "data.path=missing.pkl"],
                                 ["--set", "data.source=mosi", "--set", "data.path=no-such-dir"]])
def test_a_data_error_leaves_no_run_directory(tmp_path, monkeypatch, bad):
    monkeypatch.chdir(tmp_path)
    rc, _, err = main(["train", "smoke", *bad])
    one_line(rc, err)
    assert snapshot(tmp_path) == {".": "dir"}  # neither runs/ nor runs/smoke-s1111/


def test_sweep_docstring_names_the_thread_default():
    from miar.study import executor
    assert C.TrainConfig().threads == 1
    assert "default 1" in executor.__doc__ and "train.threads=0" in executor.__doc__
    assert "torch takes its default thread count from it (with" not in executor.__doc__


def _wait_for_line(path: Path, proc: subprocess.Popen, timeout: float) -> str:
    """The first whole line ``proc`` writes to ``path``, polled (a pipe's readline could block for good)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = path.read_text() if path.exists() else ""
        if "\n" in text:
            return text.split("\n", 1)[0]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"no line from the child within {timeout} s (exit {proc.poll()})")


def test_sigint_exits_130_even_when_the_teardown_hangs(tmp_path):
    """The CLI's last resort: a cleanup that never returns (a stuck Dask close, a thread joined at exit) is cut
    after interrupt.EXIT_GRACE_S, its children killed, exit 130. The child holds none of the script's output
    (a file each, not pipes), so whether it is alive is checked the moment the script exits, and nothing read
    afterwards can wait for the child's own end."""
    script = tmp_path / "hang.py"
    script.write_text(
        "import signal, subprocess, sys, time\n"
        "from miar import interrupt\n"
        "interrupt.EXIT_GRACE_S = 1.0\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own start-up state, however started\n"
        "interrupt.install_sigint_watchdog()\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],\n"
        "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(child.pid, signal.getsignal(signal.SIGINT) is interrupt.on_sigint, flush=True)\n"
        "try:\n"
        "    time.sleep(600)\n"
        "except KeyboardInterrupt:\n"
        "    time.sleep(600)  # the teardown that hangs\n")
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env(), stdout=o, stderr=e,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    child = None
    try:
        pid, installed = _wait_for_line(out, proc, 60).split()
        child = int(pid)
        assert installed == "True", "the watchdog was not installed"
        assert _alive([child]) == [child], "the child is not running: the check below could not fail"
        t0 = time.time()
        os.kill(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=30)
        stopped = time.time() - t0
        time.sleep(0.3)
        survivors = _alive([child])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        if child is not None and _alive([child]):
            os.kill(child, signal.SIGKILL)
    assert rc == 130 and stopped < 30, (rc, err.read_text()[-2000:])
    assert "stopped hard" in err.read_text()
    assert survivors == [], "the child outlived the hard exit"
