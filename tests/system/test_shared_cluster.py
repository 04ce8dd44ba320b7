"""Sweeps that share a cluster do not hurt each other, and nothing commits after its driver is gone: a second
driver on one Dask cluster leaves the first one's kernels running, a run or an alignment still executing when
its driver released the results lock is discarded (the lock's token fences the commit), and a worker that does
not answer is one line at the start and does not cost the sweep record at the end (one that stops answering
mid-run: tests/test_stalled_worker.py)."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from cluster import two_worker_cluster  # noqa: F401 (the cluster fixture)
from faultkit import env, main, one_line, snapshot
from test_dask import _sweep

from miar.study import engine, executor
from miar.study.executor import STAGING, job, prepare
from miar.study.lock import current_token, fenced, results_lock
from miar.study.plan import load_sweep, notebooks_dir
from miar.study.worker import execute_run


def test_the_lock_token_fences_commits(tmp_path):
    """The token is valid while the lock is held, gone after; the driver leaving waits for a commit under way."""
    with results_lock(tmp_path) as token:
        assert current_token(tmp_path) == token
        with fenced(tmp_path, token) as ok:
            assert ok
        with fenced(tmp_path, "another sweep's") as ok:
            assert not ok
        held = threading.Event()

        def commit():
            with fenced(tmp_path, token):
                held.set()
                time.sleep(0.5)  # a commit's renames, slowed down
        t = threading.Thread(target=commit)
        t.start()
        held.wait(5)
        t0 = time.time()
    assert time.time() - t0 >= 0.4, "the lock was released while a commit was under way"
    t.join(5)
    assert current_token(tmp_path) is None
    with fenced(tmp_path, token) as ok:
        assert not ok
    with fenced(tmp_path, None) as ok:  # a job from a driver older than the fence
        assert ok


def _job(tmp_path: Path, seed: int, fence):
    _, (run,) = load_sweep(str(_sweep(tmp_path / "s.yaml", [seed])))
    results = Path("results")
    prepare([run], results)
    return run, results, job(run, notebooks_dir() / "train.ipynb", results, results / STAGING / "test", fence=fence)


def test_a_run_queued_when_its_sweep_ended_does_not_start(tmp_path, monkeypatch):
    """A task that starts after its driver released the results lock runs nothing and writes nothing."""
    monkeypatch.chdir(tmp_path)
    with results_lock(Path("results")) as token:
        pass
    run, results, j = _job(tmp_path, 6, token)
    out = execute_run(j)
    assert out["outcome"] == "fenced" and "not committed" in out["error"], out
    assert not run.run_dir(results).exists() and not (results / STAGING).exists()


def test_a_run_that_outlives_its_sweep_is_not_committed(cluster, tmp_path, monkeypatch):
    """A run still executing when its driver released the results lock (Ctrl-C with a wedged scheduler) used
    to commit its record seconds later; now the worker finds the token gone at its commit and discards it."""
    from distributed import Client

    monkeypatch.chdir(tmp_path)
    results = Path("results")
    with Client(cluster.address, set_as_default=False) as client:
        with results_lock(results) as token:
            run, _, j = _job(tmp_path, 7, token)
            fut = client.submit(execute_run, j, pure=False)
            deadline = time.time() + 120
            while not list((results / STAGING / "test").rglob("*.ipynb")):  # the notebook is executing
                assert time.time() < deadline and not fut.done(), "the run never started"
                time.sleep(0.05)
        out = fut.result(timeout=300)  # the driver is gone; the run finishes now
    assert out["outcome"] == "fenced" and "not committed" in out["error"], out
    assert not run.run_dir(results).exists() and not run.notebook_path(results).exists()
    assert list((results / STAGING / "test").iterdir()) == []


def _trained(results: Path, tiny_cfg) -> Path:
    """A complete run that kept its weights: what ``miar align`` analyses."""
    from miar import config as C
    from miar.train import fit
    run = results / "runs" / "smoke" / "s1"
    fit(C.merge(tiny_cfg, {"train": {"save_model": True, "epochs": 1}}), run)
    return run


def _align_job(results: Path, token) -> dict:
    from miar.study import align
    return align._job(results, "smoke", "test", 60, results / STAGING / "align-test", token)


def test_an_alignment_queued_when_its_driver_ended_does_not_start(tmp_path, monkeypatch, tiny_cfg):
    """An alignment task that starts after its driver released the results lock runs nothing and writes
    nothing (it used to write alignment.json and figures into the records whoever held the lock)."""
    from miar.study.align_task import execute_alignment

    monkeypatch.chdir(tmp_path)
    results = Path("results")
    _trained(results, tiny_cfg)
    with results_lock(results) as token:
        j = _align_job(results, token)
    before = snapshot(results)
    out = execute_alignment(j)
    assert out["outcome"] == "fenced" and "not committed" in out["error"], out
    assert snapshot(results) == before


def test_an_alignment_that_outlives_its_driver_commits_nothing(cluster, tmp_path, monkeypatch, tiny_cfg):
    """An alignment still executing when its driver released the results lock, which another sweep then took
    over, commits nothing when it finishes: no alignment.json, figure or notebook; its staging is discarded."""
    from distributed import Client

    from miar.study.align_task import execute_alignment

    monkeypatch.chdir(tmp_path)
    results = Path("results")
    run = _trained(results, tiny_cfg)
    with Client(cluster.address, set_as_default=False) as client:
        with results_lock(results) as token:
            j = _align_job(results, token)
            before = snapshot(results / "runs")
            fut = client.submit(execute_alignment, j, pure=False)
            deadline = time.time() + 120
            while not list((results / STAGING / "align-test").rglob("*.ipynb")):  # the notebook is executing
                assert time.time() < deadline and not fut.done(), f"the analysis never started: {fut}"
                time.sleep(0.05)
        with results_lock(results):  # another driver takes the results over; the analysis finishes now
            out = fut.result(timeout=300)
    assert out["outcome"] == "fenced" and "not committed" in out["error"], out
    assert snapshot(results / "runs") == before and not (run / "alignment.json").exists()
    assert not (results / "notebooks" / "smoke" / "alignment.ipynb").exists()
    assert list((results / STAGING / "align-test").iterdir()) == []


def test_a_second_driver_leaves_the_first_ones_kernels(cluster, tmp_path):
    """Each driver registers its kernel plugin under a name of its own: a second sweep, tune or align on the
    cluster no longer replaces the first one's plugin, whose teardown stopped the kernels it was running."""
    rc, _, err = main(["sweep", _sweep(tmp_path / "s.yaml", [1]), "--results", tmp_path / "r",
                       "--scheduler", cluster.address])
    assert rc == 0, err[-2000:]
    kernels = [k for w in cluster.live_workers() for k in cluster.kernels(w)]
    assert kernels, "no kernel kept on a worker: nothing to test"
    with engine.connect(scheduler=cluster.address):  # a second driver joins the cluster and leaves it
        pass
    time.sleep(1)
    assert all(k.is_running() for k in kernels), "another driver's connection stopped the kernels"


def _within(fn, timeout_s: float):
    """``fn()``'s value, or a failure if it has not returned within ``timeout_s`` (a regression hangs here,
    in a daemon thread, instead of hanging the suite)."""
    box = []
    t = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    t.start()
    t.join(timeout_s)
    assert not t.is_alive(), f"still waiting after {timeout_s} s"
    return box[0]


def test_a_worker_that_does_not_answer_is_one_line_and_the_record_is_kept(cluster, tmp_path, monkeypatch):
    """A stopped worker used to block the sweep's start forever, and at its end cost the sweep record (the
    record's thread count asks every worker); now the start is one line and the end records without it."""
    from distributed import Client

    monkeypatch.setattr(engine, "WORKER_ANSWER_S", 2.0)
    victim = cluster.live_workers()[0]
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        rc, _, err = _within(lambda: main(["sweep", _sweep(tmp_path / "s.yaml", [1]), "--results", tmp_path / "r",
                                           "--scheduler", cluster.address]), 60)
        one_line(rc, err, "did not answer within 2 s", "127.0.0.1")
        with Client(cluster.address, set_as_default=False) as client:
            assert _within(lambda: executor._threads(client), 60) is None  # unknown, said so, no hang
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    cluster.wait_for_workers(2)


@pytest.mark.slow
def test_two_sweeps_on_one_cluster_both_complete(cluster, tmp_path):
    """Two sweeps at once on one cluster, each with its own results: every run of each recorded once, none
    failed because the other's plugin stopped its kernel."""
    import subprocess
    import sys

    from test_dask import _exactly_once
    procs = []
    for i in range(2):
        sweep = _sweep(tmp_path / f"s{i}.yaml", [1, 2])
        procs.append(subprocess.Popen([sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results",
                                       str(tmp_path / f"r{i}"), "--scheduler", cluster.address], cwd=tmp_path,
                                      env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True))
    errs = []
    try:
        for p in procs:
            errs.append(p.communicate(timeout=600)[1])
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for e in errs]
    for i in range(2):
        _exactly_once(tmp_path / f"r{i}", [1, 2])
