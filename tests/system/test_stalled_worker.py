"""A worker that stops answering in the middle of a run (SIGSTOP: stopped, swapping, wedged) costs its runs, not
the sweep: after $MIAR_WORKER_STALL_S seconds without its heartbeat its runs are reported failed with a line
saying so, the workers that answer run the rest (or, none left, the sweep ends), the sweep record is written,
and the stopped worker, once resumed, commits nothing. Real clusters on 127.0.0.1: the two-worker one of
tests/cluster.py and the sweep's own LocalCluster."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from cluster import two_worker_cluster  # noqa: F401 (the cluster fixture)
from faultkit import env, main, one_line
from test_dask import _sweep

from miar.study.executor import STAGING
from miar.study.plan import load_sweep, status

STALL = "stopped answering mid-run"


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan"])
@pytest.mark.parametrize("command", [["sweep", "smoke"], ["align"], ["tune", "smoke"]])
def test_a_bad_stall_timeout_is_one_line(tmp_path, monkeypatch, command, value):
    """$MIAR_WORKER_STALL_S that is not a positive number of seconds: one line naming it, before anything is
    written."""
    monkeypatch.setenv("MIAR_WORKER_STALL_S", value)
    rc, _, err = main([*command, "--results", tmp_path / "r"])
    one_line(rc, err, "MIAR_WORKER_STALL_S")
    assert not (tmp_path / "r").exists()


def _restore(cluster, victim, n: int = 2) -> None:
    """The module's cluster has ``n`` live workers again: the resumed ``victim`` rejoins, or is replaced if the
    scheduler retired it and it has closed."""
    deadline = time.time() + 30
    while victim.poll() is None and time.time() < deadline and len(cluster.live_workers()) > n - 1:
        try:
            cluster.wait_for_workers(n, timeout=2)
            return
        except TimeoutError:
            pass
    if victim.poll() is None:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    cluster.start_worker()
    cluster.wait_for_workers(n)


def test_a_worker_that_stalls_mid_run_costs_its_runs_not_the_sweep(cluster, tmp_path, monkeypatch):
    """A worker that stops answering in the middle of a run (SIGSTOP) used to block its sweep forever; now,
    after $MIAR_WORKER_STALL_S seconds without its heartbeat, its runs are reported failed with a line saying so,
    the other worker runs the rest, the sweep ends (exit 1) with its record written, and the stopped worker,
    once resumed, commits nothing."""


    monkeypatch.setenv("MIAR_WORKER_STALL_S", "5")
    seeds, results = [1, 2, 3], tmp_path / "r"
    sweep = _sweep(tmp_path / "s.yaml", seeds)
    box = []
    t = threading.Thread(target=lambda: box.append(main(["sweep", sweep, "--results", results, "--scheduler",
                                                         cluster.address])), daemon=True)
    t.start()
    deadline = time.time() + 120
    while len(list((results / STAGING).glob("*/*"))) < 2:  # both workers are executing a run
        assert time.time() < deadline and t.is_alive(), f"two runs never ran at once: {box}"
        time.sleep(0.05)
    victim = cluster.live_workers()[0]
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        t.join(120)
        assert not t.is_alive(), "the sweep still waits for the stopped worker"
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    try:
        rc, _, err = box[0]
        failed = [ln for ln in err.splitlines() if ln.startswith("failed: ")]
        assert rc == 1 and failed, err[-3000:]
        assert all(STALL in ln and "MIAR_WORKER_STALL_S" in ln for ln in failed), failed
        _, runs = load_sweep(str(sweep))
        done = {r.key for r in runs if status(r, results) == "done"}
        assert done and len(done) + len(failed) == len(seeds), (done, failed)
        record = json.loads(next((results / "sweeps").glob("*.json")).read_text())
        assert record["runs_failed"] == len(failed) and record["runs_in_sweep"] == len(seeds)
        time.sleep(5)  # the resumed worker finishes what it was doing: its commit is fenced
        assert {r.key for r in runs if r.run_dir(results).exists()} == done
    finally:
        _restore(cluster, victim)


def _worker_running_a_kernel(pid: int, timeout_s: float = 120) -> psutil.Process:
    """The LocalCluster worker under process ``pid`` once it runs a kernel (a run has started)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for p in psutil.Process(pid).children(recursive=True):
            try:
                if any("ipykernel" in " ".join(k.cmdline()) for k in p.children()):
                    return p
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.1)
    raise AssertionError("no run started within the time allowed")


def test_the_only_worker_of_a_local_cluster_stalling_ends_the_sweep(tmp_path):
    """The sweep's own LocalCluster of one worker, stopped mid-run: the runs on it are reported failed, the one
    still queued is given up too (no worker is left to run it), the sweep exits 1 with its record written,
    and the stopped worker is ended with the cluster."""
    seeds, results = [1, 2, 3], tmp_path / "r"
    sweep = _sweep(tmp_path / "s.yaml", seeds)
    errfile = (tmp_path / "sweep.err").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results", str(results)],
                            cwd=tmp_path, env=env(MIAR_WORKER_STALL_S="5"), stdout=subprocess.DEVNULL,
                            stderr=errfile, start_new_session=True)
    victim = None
    try:
        victim = _worker_running_a_kernel(proc.pid)
        os.kill(victim.pid, signal.SIGSTOP)
        rc = proc.wait(timeout=120)
    finally:
        errfile.close()
        if victim is not None and victim.is_running():
            os.kill(victim.pid, signal.SIGCONT)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    err = (tmp_path / "sweep.err").read_text()
    failed = [ln for ln in err.splitlines() if ln.startswith("failed: ")]
    assert rc == 1 and len(failed) == len(seeds), err[-3000:]
    assert all(STALL in ln or "no worker is left that answers" in ln for ln in failed), failed
    assert any(STALL in ln for ln in failed), failed
    assert not list((results / "runs").glob("smoke/s*/metrics.json"))
    record = json.loads(next((results / "sweeps").glob("*.json")).read_text())
    assert record["runs_failed"] == len(seeds)
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE, "the stopped worker was left"
