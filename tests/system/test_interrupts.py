"""Interrupts are quiet and complete: Ctrl-C while a sweep starts its cluster prints one line, SIGTERM gets the
orderly stop Ctrl-C gets (exit 143), no kernel connection file or cluster folder is left in the temporary
folder, and a new tune database follows the umask."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultkit import TINY, env
from test_faults_runs import SLOW, _alive, _family, _sweep

from miar import interrupt
from miar.study.integrity import record_problem
from miar.study.lock import results_lock


def test_a_signal_while_held_is_delivered_when_the_block_ends():
    """A Ctrl-C during a cluster's start waits for the start to finish, then raises as usual."""
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with interrupt.held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the handler runs in the main thread between bytecodes: here, if it raised
            reached = True
    assert reached, "the signal was not held"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_a_second_signal_while_held_is_delivered_at_once():
    """A start that hangs can still be stopped: the second Ctrl-C does not wait."""
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with interrupt.held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
            reached = True
    assert not reached


def test_a_new_tune_database_follows_the_umask(tmp_path):
    """SQLite makes its file 0644 whatever the umask; a group that shares the study could not resume it."""
    import optuna

    from miar.study.tune_share import create_storage
    url = f"sqlite:///{tmp_path / 'group' / 'study.db'}"
    old = os.umask(0o002)
    try:
        create_storage(url)
        optuna.create_study(study_name="s", storage=url).ask()
    finally:
        os.umask(old)
    assert (tmp_path / "group" / "study.db").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "group" / "study.db").stat().st_size > 0  # SQLite took the empty file as a new database


def _start(tmp_path: Path, seeds, overrides) -> tuple[subprocess.Popen, Path, Path]:
    sweep, results = _sweep(tmp_path / "s.yaml", seeds, overrides), tmp_path / "results"
    (tmp_path / "tmp").mkdir()
    cmd = [sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results", str(results)]
    out, err = (tmp_path / "out.txt").open("w"), (tmp_path / "err.txt").open("w")
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=err, start_new_session=True,
                            env={**env(), "TMPDIR": str(tmp_path / "tmp"), "PYTHONFAULTHANDLER": "1",
                                 "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    out.close()
    err.close()
    return proc, results, tmp_path / "err.txt"


def _wait_until(cond, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not cond():
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"{what} never happened (exit {proc.poll()})")
        time.sleep(0.05)


def _stopped(proc: subprocess.Popen, timeout: float = 40) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        pytest.fail(f"the sweep did not stop within {timeout} s")


def _leftovers(tmp_path: Path) -> list[str]:
    """Kernel connection files and cluster folders the sweep left in its temporary and runtime folders."""
    found = [p.name for p in (tmp_path / "tmp").iterdir() if p.suffix == ".json" or p.name.startswith("miar-")]
    runtime = tmp_path / "runtime"
    return found + ([p.name for p in runtime.iterdir() if p.suffix == ".json"] if runtime.is_dir() else [])


def test_ctrl_c_while_the_cluster_starts_is_one_line(tmp_path):
    """A terminal's Ctrl-C (SIGINT to the whole process group) in the sweep's first seconds: the workers being
    started used to print 43 to 105 lines of tracebacks; now the sweep says it was interrupted, and no more."""
    proc, _, err = _start(tmp_path, [1, 2], TINY)
    try:
        _wait_until(lambda: "sweep " in (tmp_path / "out.txt").read_text(), proc, 120, "the sweep's start")
        time.sleep(0.5)  # the LocalCluster is starting its workers now
        family = _family(proc.pid)[0]
        os.killpg(proc.pid, signal.SIGINT)
        rc = _stopped(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    lines = [ln for ln in err.read_text().splitlines() if ln.strip() and not ln.startswith("sweep ")]
    assert rc == 130 and lines == ["interrupted"], err.read_text()[-3000:]
    time.sleep(0.5)
    assert _alive(family) == [] and _leftovers(tmp_path) == []


def test_sigterm_stops_a_sweep_as_ctrl_c_does(tmp_path):
    """SIGTERM to the driver (Slurm, systemd, kill) used to end it at once; now it cancels the runs, stops the
    workers and kernels, leaves no connection file, frees the lock and exits 143; the rerun completes."""
    seeds = [1, 2, 3, 4]
    proc, results, err = _start(tmp_path, seeds, SLOW)
    try:
        kernels = []

        def kernel_running():
            kernels.extend(_family(proc.pid)[1])
            return bool(kernels)
        _wait_until(kernel_running, proc, 120, "a kernel")
        family = sorted(set(_family(proc.pid)[0]))
        os.kill(proc.pid, signal.SIGTERM)
        rc = _stopped(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    text = err.read_text()
    assert rc == 143 and "terminated" in text and "Traceback" not in text, text[-3000:]
    time.sleep(1.5)  # an orphaned kernel would notice its parent is gone within a second
    assert _alive(family) == [], "workers or kernels outlived the sweep"
    assert _leftovers(tmp_path) == []
    with results_lock(results):  # free: the driver released it on the way out
        pass
    done = [s for s in seeds if record_problem(results / "runs" / "smoke" / f"s{s}") is None]
    assert len(done) < len(seeds), "every run finished before SIGTERM: nothing was tested"
