"""``miar align``: the alignment analysis of an experiment's trained runs, executed with papermill.

For each experiment, the packaged ``alignment.ipynb`` runs once over every complete run that kept its
weights (``model.pt``), writes ``alignment.json`` and the t-SNE figures into each run directory, and
is saved as ``DIR/notebooks/<experiment>/alignment.ipynb``. Experiments whose runs all have a current
``alignment.json`` are skipped. The notebooks run as tasks on Dask, like the sweep's (``--workers``,
``--scheduler``: :mod:`miar.study.engine`). ``miar collect`` then adds the numbers to the tables (``align_*``).

Like a sweep's runs, the tasks write into a staging directory and commit only while this driver still holds
the results lock: each job carries the lock's token (:mod:`miar.study.align_task`), so an analysis that outlives
its driver (Ctrl-C with a wedged scheduler) or whose lock another sweep took over writes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from miar.paths import inside
from miar.records import atomic_write, is_complete
from miar.study import engine
from miar.study.align_task import execute_alignment, model_digest
from miar.study.executor import STAGING
from miar.study.lock import give_up, results_lock
from miar.study.plan import notebooks_dir
from miar.study.tasks import stall_timeout
from miar.study.worker import fingerprint


def aligned_runs(results: Path, experiment: str) -> list[Path]:
    """Complete runs of ``experiment`` that kept their weights."""
    return sorted(d for d in inside(results / "runs", experiment, what="experiment").glob("*")
                  if is_complete(d) and (d / "model.pt").is_file())


def is_current(run_dir: Path) -> bool:
    """``alignment.json`` was made from the ``model.pt`` beside it: its ``model_sha256`` stamp matches (file
    times say nothing after a git checkout). A file from before the stamp counts as current: a retrained run
    starts from an emptied directory."""
    a = run_dir / "alignment.json"
    try:
        stamp = json.loads(a.read_text()).get("model_sha256") if a.is_file() else False
    except (OSError, ValueError):
        return False
    return stamp is None or (stamp is not False and stamp == model_digest(run_dir))


def stamp(run_dir: Path) -> None:
    """Record in ``alignment.json`` which weights it analysed."""
    a = run_dir / "alignment.json"
    atomic_write(a, json.dumps({**json.loads(a.read_text()), "model_sha256": model_digest(run_dir)}, indent=2)
                 + "\n")


def run_alignment(experiments: list[str] | None, results: str | Path = "results", split: str = "test",
                  max_points: int = 600, workers: int = 1, scheduler: str | None = None,
                  scheduler_file: str | None = None, gpus_per_run: int = 0) -> int:
    """Analyse the given experiments (default: every experiment with saved weights) on Dask, one task per
    experiment (:mod:`miar.study.engine`); 0 on success, 1 when an analysis failed."""
    results = Path(results)
    if not experiments:
        experiments = sorted({p.parent.parent.name for p in (results / "runs").glob("*/*/model.pt")})
    for exp in experiments:  # every name checked before anything is written
        inside(results / "runs", exp, what="experiment")
    stall_timeout()
    with results_lock(results) as token:
        staging = results / STAGING / f"align-{os.getpid()}-{time.time_ns()}"
        jobs = [j for exp in experiments if (j := _job(results, exp, split, max_points, staging, token)) is not None]
        if not jobs:
            return 0
        cluster = {"workers": min(workers, len(jobs)), "scheduler": scheduler, "scheduler_file": scheduler_file,
                   "gpus_per_run": gpus_per_run}
        shutil.rmtree(results / STAGING, ignore_errors=True)  # a killed driver's attempts: no sweep is running
        try:
            return _execute(results, jobs, cluster, gpus_per_run)
        finally:
            shutil.rmtree(results / STAGING, ignore_errors=True)  # abandoned attempts; a late writer finds none


def _execute(results: Path, jobs: list[dict], cluster: dict, gpus_per_run: int) -> int:
    """Run the jobs on a cluster opened for them (each commits its own files); 1 if one failed, else 0."""
    failed = 0
    with engine.connect(**cluster) as client:
        for job, res, _ in engine.run_tasks(client, execute_alignment, jobs, gpus_per_run, key="miar-align",
                                            on_stall=lambda j: give_up(results, j["key"])):
            err = f"{type(res).__name__}: {res}" if isinstance(res, BaseException) else res["error"]
            print(f"align {job['key']}: {'done' if err is None else 'FAILED: ' + err}")
            failed += err is not None
    return 1 if failed else 0


def _job(results: Path, exp: str, split: str, max_points: int, staging: Path, fence: str | None) -> dict | None:
    """The task's description of ``exp``'s analysis, or None when there is nothing to analyse; ``fence``: the
    results lock's token, without which the worker commits nothing (:mod:`miar.study.align_task`)."""
    runs = aligned_runs(results, exp)
    if not runs:
        print(f"align {exp}: no complete runs with model.pt; skipped")
        return None
    if all(is_current(d) for d in runs):
        print(f"align {exp}: {len(runs)} runs already analysed")
        return None
    out = inside(results / "notebooks", exp, "alignment.ipynb", what="experiment")
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"align {exp}: {len(runs)} runs -> {out}")
    return {"key": exp, "notebook": str(notebooks_dir() / "alignment.ipynb"), "output": str(out),
            "cwd": os.getcwd(), "fingerprint": fingerprint(fresh=True), "results": str(results),
            "staging": str(staging), "fence": fence,
            "parameters": {"run_dirs": [str(d) for d in runs], "split": split, "max_points": max_points,
                           "out_dir": ""}}
