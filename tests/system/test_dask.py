"""Sweeps on Dask distributed with real components on 127.0.0.1 (issue 17): an external ``dask scheduler`` and
two ``dask worker`` processes (tests/cluster.py) against the default LocalCluster and a lone ``fit``; SIGKILL of a
worker mid-run; the same run committed twice; a wrong scheduler address; another ``miar`` on a worker."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from cluster import free_port, two_worker_cluster  # noqa: F401 (the cluster fixture)
from faultkit import TINY, env, main, one_line

from miar import config as C
from miar.study import engine, staging
from miar.study.executor import STAGING, job, prepare
from miar.study.integrity import notebook_problem, record_problem
from miar.study.plan import load_sweep, notebooks_dir
from miar.study.worker import execute_run


def _sweep(path: Path, seeds) -> Path:
    path.write_text(json.dumps({"notebook": "train.ipynb", "seeds": list(seeds),
                                "runs": [{"experiment": "smoke", "overrides": TINY}]}))
    return path


def _metrics(results: Path, seed: int) -> dict:
    m = json.loads((results / "runs" / "smoke" / f"s{seed}" / "metrics.json").read_text())
    return {"valid": m["valid"], "test": m["test"]}


def _exactly_once(results: Path, seeds) -> None:
    """Every run recorded once, whole, with its notebook; no staging, temporary or log left."""
    runs = results / "runs" / "smoke"
    assert sorted(p.name for p in runs.iterdir()) == sorted(f"s{s}" for s in seeds)
    for s in seeds:
        assert record_problem(runs / f"s{s}") is None
        assert notebook_problem(results / "notebooks" / "smoke" / f"s{s}.ipynb") is None
    assert sorted(p.name for p in (results / "notebooks" / "smoke").iterdir()) == sorted(f"s{s}.ipynb" for s in seeds)
    assert not (results / STAGING).exists()


def test_external_cluster_gives_the_local_clusters_and_a_lone_fits_metrics(cluster, tmp_path):
    from miar.train import fit

    sweep = _sweep(tmp_path / "s.yaml", [1, 2])
    rc, out, err = main(["sweep", sweep, "--results", tmp_path / "ext", "--scheduler", cluster.address])
    assert rc == 0, err[-2000:]
    _exactly_once(tmp_path / "ext", [1, 2])
    rc, _, err = main(["sweep", _sweep(tmp_path / "one.yaml", [2]), "--results", tmp_path / "local"])
    assert rc == 0, err[-2000:]
    lone = fit(C.load("smoke", TINY, seed=2), tmp_path / "lone")
    assert _metrics(tmp_path / "ext", 2) == _metrics(tmp_path / "local", 2) == {"valid": lone["valid"],
                                                                              "test": lone["test"]}
    nb = json.loads((tmp_path / "ext" / "notebooks" / "smoke" / "s1.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"]["run_dir"] == str(tmp_path / "ext" / "runs" / "smoke" / "s1")
    assert STAGING not in json.dumps(nb)  # the staging path was rewritten everywhere
    rec = json.loads(next((tmp_path / "ext" / "sweeps").glob("s-*.json")).read_text())
    assert rec["runs_executed"] == 2 and rec["runs_failed"] == 0
    assert main(["collect", "--results", tmp_path / "ext"])[0] == 0  # the notebooks cross-check their records


def test_sigkill_of_a_worker_mid_run(cluster, tmp_path):
    """The worker running a notebook dies: Dask reruns its task elsewhere, each run is recorded once, its kernel
    does not outlive it."""
    seeds = [1, 2, 3]
    sweep, results = _sweep(tmp_path / "s.yaml", seeds), tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results", str(results),
                             "--scheduler", cluster.address], cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        victim, kernels, deadline = None, [], time.time() + 120
        while time.time() < deadline and victim is None:  # a worker whose kernel is executing a notebook
            for w in cluster.live_workers():
                if cluster.kernels(w) and list((results / STAGING).rglob("*.ipynb")):
                    victim, kernels = w, cluster.kernels(w)
                    break
            time.sleep(0.2)
        assert victim is not None, "no worker ever ran a notebook"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        cluster.start_worker()  # the next test gets two workers again
    assert proc.returncode == 0, err[-2000:]
    _exactly_once(results, seeds)
    time.sleep(1.5)  # ipykernel polls its parent every second
    assert [k.pid for k in kernels if k.is_running() and k.status() != psutil.STATUS_ZOMBIE] == [], "orphan kernel"


def test_the_same_run_committed_twice_is_recorded_once(cluster, tmp_path, monkeypatch):
    """Two attempts of one run on two workers at once (what Dask does after a worker looked dead): one commits,
    the other is discarded; the record and the notebook are the winner's files, all of them."""
    from distributed import Client

    monkeypatch.chdir(tmp_path)
    _, (run,) = load_sweep(str(_sweep(tmp_path / "s.yaml", [5])))
    results = Path("results")
    prepare([run], results)
    j = job(run, notebooks_dir() / "train.ipynb", results, results / STAGING / "test")
    cluster.wait_for_workers(2)
    with Client(cluster.address, set_as_default=False) as client:
        workers = sorted(client.scheduler_info()["workers"])[:2]
        futs = [client.submit(execute_run, j, workers=[w], pure=False, allow_other_workers=False) for w in workers]
        outs = client.gather(futs)
    assert sorted(o["outcome"] for o in outs) == ["committed", "duplicate"], outs
    assert all(o["error"] is None for o in outs)
    winner = next(o for o in outs if o["outcome"] == "committed")
    final = staging.digest([results / "runs" / "smoke" / "s5", results / "notebooks" / "smoke" / "s5.ipynb"])
    assert final == winner["files"]
    assert list((results / STAGING / "test").iterdir()) == []  # both attempts removed their staging
    assert sorted(p.name for p in (results / "runs" / "smoke").iterdir()) == ["s5"]
    assert sorted(p.name for p in (results / "notebooks" / "smoke").iterdir()) == ["s5.ipynb"]
    assert record_problem(results / "runs" / "smoke" / "s5") is None


def test_commit_is_won_once_without_mixing(tmp_path):
    """The rename is the commit: a second attempt moves nothing, and a failed run's empty directory yields."""
    final, nb = tmp_path / "runs" / "x" / "s1", tmp_path / "notebooks" / "x" / "s1.ipynb"
    attempts = []
    for i in range(2):
        run = tmp_path / f"a{i}" / "runs" / "x" / "s1"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(f"attempt {i}")
        (tmp_path / f"a{i}" / "s1.ipynb").write_text(f"notebook {i}")
        attempts.append((run, tmp_path / f"a{i}" / "s1.ipynb"))
    failed = tmp_path / "f" / "s1"
    assert staging.commit(failed, final, [])  # a failure commits an empty directory first
    assert staging.commit(attempts[0][0], final, [(attempts[0][1], nb)])  # a success still replaces it
    assert not staging.commit(attempts[1][0], final, [(attempts[1][1], nb)])
    assert (final / "metrics.json").read_text() == "attempt 0" and nb.read_text() == "notebook 0"
    assert not staging.commit(tmp_path / "f2" / "s1", final, [])  # a late failure never replaces a record


def test_wrong_scheduler_address_is_one_line_within_10_s(tmp_path):
    sweep = _sweep(tmp_path / "s.yaml", [1])
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results", str(tmp_path / "r"),
                        "--scheduler", f"tcp://127.0.0.1:{free_port()}"], cwd=tmp_path, env=env(),
                       capture_output=True, text=True, timeout=60)
    assert time.time() - t0 < 10
    one_line(r.returncode, r.stderr, "cannot reach the Dask scheduler at tcp://127.0.0.1:")
    rc, _, err = main(["sweep", sweep, "--results", tmp_path / "r", "--scheduler-file", tmp_path / "none.json"])
    one_line(rc, err, "no such scheduler file")


def test_a_worker_with_another_miar_is_refused(cluster, monkeypatch):
    from distributed import Client

    from miar.study import worker
    with Client(cluster.address, set_as_default=False) as client:
        assert len(engine.check_workers(client)) >= 1  # same sources: accepted
        monkeypatch.setattr(worker, "fingerprint", lambda fresh=False: "0" * 64)  # the driver's sources change
        with pytest.raises(engine.EngineError, match="runs another miar") as e:
            engine.check_workers(client)
    assert "\n" not in str(e.value)
    refused = execute_run({"key": "x/s1", "fingerprint": "f" * 64})  # each task checks again
    assert refused["outcome"] == "refused" and "another miar" in refused["error"]


def test_local_cluster_workers_get_their_own_gpus():
    from miar.study.worker import gpu_slice
    assert [gpu_slice(i, 1, ["0", "1"]) for i in range(2)] == ["0", "1"]
    assert [gpu_slice(i, 2, ["3", "4", "5", "6"]) for i in range(2)] == ["3,4", "5,6"]
    with pytest.raises(RuntimeError, match="only 2 visible"):
        gpu_slice(1, 2, ["0", "1"])
