"""``miar sweep NAME``: execute a sweep's parameterized notebook once per (experiment, variant, seed) on Dask.

Each run (:mod:`miar.study.plan`) is executed with papermill (parameters ``experiment, seed, overrides,
run_dir``) into ``DIR/notebooks/<experiment>/s<seed>.ipynb`` and records into ``DIR/runs/<experiment>/s<seed>/``,
where ``<experiment>`` includes ``+<variant>``.
A run whose record is complete with the same resolved ``config.yaml`` text is skipped; any other existing
run directory is cleared and redone. Failed runs keep their executed notebook (and ``<run>.log``, the
kernel's stdout/stderr); the others go on, and the command exits 1 naming the failures.

The runs are tasks on Dask distributed (:mod:`miar.study.engine`): by default a ``LocalCluster`` started here
with ``--workers N`` worker processes of one thread each; ``--scheduler tcp://HOST:PORT`` or
``--scheduler-file FILE`` uses an existing cluster (``dask scheduler`` / ``dask worker``, dask-jobqueue).
Each worker keeps one Jupyter kernel for its runs and resets its namespace between them
(:mod:`miar.study.papermill_engine`; ``--fresh-kernels`` starts one per run). A worker writes a run into a
staging directory and commits it by a rename only the first finisher wins (:mod:`miar.study.staging`), so a
run that Dask executes twice (its worker died, or looked dead) is recorded once. This driver alone holds the
results lock (:mod:`miar.study.lock`) and clears incomplete runs.

Threads: torch uses ``train.threads`` (default 1: tiny models run fastest on one thread and a fixed count keeps
CPU results bit-identical), and ``env.json`` records the threads used. With ``--workers N`` on the
LocalCluster each worker, and so its kernel, also gets ``OMP_NUM_THREADS=MKL_NUM_THREADS=max(1, cores // N)``
in its environment, which only a config with ``train.threads=0`` (all cores) takes its thread count from; the
workers of an existing cluster decide their own. The kernel gets the directory holding the worker's ``miar``
first on ``PYTHONPATH``, and the driver refuses workers whose ``miar`` differs from its own.

Executed notebooks are written atomically (:mod:`miar.study.notebook_io`), and a run is complete only when its
record and its notebook are whole (:func:`miar.study.plan.status`). Ctrl-C (SIGINT) cancels the queued runs,
stops the workers and their kernels and exits 130; SIGTERM does the same and exits 143
(:mod:`miar.interrupt`); the next invocation redoes the interrupted runs. Each job carries the results lock's
token, and a worker commits only while that token is current (:func:`miar.study.lock.fenced`): a run that
outlives its sweep is discarded. A worker that stops answering mid-run costs its runs, reported failed after
``$MIAR_WORKER_STALL_S`` seconds (:mod:`miar.study.tasks`), not the sweep.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

from miar import config as C
from miar.study.lock import current_token, give_up, results_lock
from miar.study.notebook_io import temporary
from miar.study.plan import Run, load_sweep, status
from miar.study.tasks import stall_timeout
from miar.sweep_records import write_sweep_record

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds miar/
STAGING = ".staging"  # DIR/.staging/<sweep>/<attempt>/: where workers write before they commit


def job(run: Run, notebook: Path, results: Path, staging: Path, reuse_kernel: bool = True,
        fence: str | None = None) -> dict:
    """The task's description of one run (plain data: it travels to the worker); ``fence``: the results lock's
    token (:func:`miar.study.lock.fenced`), without which the worker will not commit."""
    from miar.study.worker import fingerprint
    run_dir = run.run_dir(results)
    return {"key": run.key, "display": run.display, "name": run.name, "notebook": str(notebook),
            "output": str(run.notebook_path(results)), "cwd": os.getcwd(), "staging": str(staging),
            "results": str(results), "fence": fence,
            "reuse_kernel": reuse_kernel, "fingerprint": fingerprint(fresh=True),
            "parameters": {"experiment": run.experiment, "seed": run.seed,
                           "overrides": list(run.overrides), "run_dir": str(run_dir)}}


def run_sweep(name: str, results: str | Path = "results", workers: int = 1, dry_run: bool = False,
              progress: bool = True, redo_changed: bool = False, fresh_kernels: bool = False,
              overrides: tuple[str, ...] = (), scheduler: str | None = None, scheduler_file: str | None = None,
              gpus_per_run: int = 0, stop_after: float | None = None) -> int:
    """Execute the sweep's pending runs; 0 when every run is complete, 1 when some failed, 3 when
    ``stop_after`` (minutes) passed before every run started (none failed; the same command resumes).

    Complete records are never modified: one whose config differs from the sweep's is an error
    unless ``redo_changed``. Incomplete run directories (a crash, a kill) are cleared and redone.
    Each worker keeps one kernel for its runs (:mod:`miar.study.papermill_engine`) unless ``fresh_kernels``.
    With ``stop_after`` no run starts after that many minutes; the runs under way finish and are recorded,
    and the sweep record counts the runs that did run (a sweep longer than a session ends cleanly).
    """
    if workers < 1:
        raise C.ConfigError(f"--workers must be >= 1, got {workers}")
    if stop_after is not None and not stop_after > 0:
        raise C.ConfigError(f"--stop-after must be a positive number of minutes, got {stop_after}")
    if gpus_per_run < 0:
        raise C.ConfigError(f"--gpus-per-run must be >= 0, got {gpus_per_run}")
    stall_timeout()  # $MIAR_WORKER_STALL_S, checked before anything is written
    results = Path(results)
    notebook, runs = load_sweep(name, tuple(overrides))  # --set: every run's config
    cluster = {"workers": workers, "scheduler": scheduler, "scheduler_file": scheduler_file,
               "gpus_per_run": gpus_per_run}
    deadline = None if stop_after is None else time.time() + 60.0 * stop_after
    if dry_run:
        return _run_sweep(name, results, notebook, runs, cluster, True, progress, redo_changed, fresh_kernels)
    with results_lock(results):
        return _run_sweep(name, results, notebook, runs, cluster, False, progress, redo_changed, fresh_kernels,
                          deadline)


def _run_sweep(name, results, notebook, runs, cluster, dry_run, progress, redo_changed, fresh_kernels,
               deadline: float | None = None) -> int:
    states = {r.key: status(r, results) for r in runs}
    todo = [r for r in runs if states[r.key] != "done"]
    if not dry_run:  # a log is kept for failures only; a kill can strand one beside a complete run
        for r in runs:
            if states[r.key] == "done":
                r.notebook_path(results).with_suffix(".log").unlink(missing_ok=True)
    print(f"sweep {name}: {len(runs)} runs, {len(runs) - len(todo)} complete, {len(todo)} to run "
          f"({notebook.name} -> {results})")
    if dry_run:
        for r in runs:
            print(f"  {states[r.key]:<10} {r.key}  {' '.join(r.overrides)}")
        return 0
    changed = [r.key for r in todo if states[r.key] == "changed"]
    if changed and not redo_changed:
        raise C.ConfigError(f"{results}: {len(changed)} complete run(s) were made with another config "
                            f"(e.g. {changed[0]}); completed records are never overwritten: move them "
                            f"away or pass --redo-changed")
    for key in changed:
        print(f"  {key}: complete for another config; it will be redone (--redo-changed)")
    if not todo:
        return 0
    workers = min(cluster["workers"], len(todo))
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.time()
    failures, threads = execute(todo, notebook, results, dict(cluster, workers=workers), f"sweep {name}",
                                progress, reuse_kernel=not fresh_kernels, deadline=deadline)
    failed = {k for k, _ in failures}
    unstarted = [r.key for r in todo if r.key not in failed and status(r, results) != "done"]
    write_sweep_record(results, name, started, time.time() - t0, workers, threads, len(runs),
                       len(todo) - len(unstarted), failures, fresh_kernels)
    return _outcome(name, results, len(todo), failures, len(unstarted))


def _outcome(name: str, results: Path, n_todo: int, failures: list, unstarted: int) -> int:
    """Say what failed or was left for later; the exit code (1 failures, 3 stopped by --stop-after, else 0)."""
    if failures:
        for key, err in sorted(failures):
            nb = results / "notebooks" / f"{key}.ipynb"
            print(f"failed: {key} (notebook {nb}, log {nb.with_suffix('.log')}): {err}", file=sys.stderr)
        print(f"sweep {name}: {len(failures)} of {n_todo} runs failed", file=sys.stderr)
        return 1
    if unstarted:
        print(f"sweep {name}: stopped after --stop-after; {n_todo - unstarted} runs done, "
              f"{unstarted} not started (the same command resumes)")
        return 3
    return 0


def prepare(todo: list[Run], results: Path) -> None:
    """Clear each pending run's directory and notebook (the driver's job; workers only commit)."""
    for r in todo:
        if r.run_dir(results).exists():
            shutil.rmtree(r.run_dir(results))  # incomplete or for another config: redo cleanly
        r.run_dir(results).parent.mkdir(parents=True, exist_ok=True)  # not the run dir: the commit creates it
        r.notebook_path(results).parent.mkdir(parents=True, exist_ok=True)
        r.notebook_path(results).unlink(missing_ok=True)  # a stale notebook never sits beside a new record
        r.notebook_path(results).with_suffix(".log").unlink(missing_ok=True)
        temporary(r.notebook_path(results)).unlink(missing_ok=True)  # nor a killed run's temporary


def execute(todo: list[Run], notebook: Path, results: Path, cluster: dict, desc: str, progress: bool,
            reuse_kernel: bool = True, deadline: float | None = None) -> tuple[list[tuple[str, str]], int]:
    """Run ``todo`` on a cluster opened for them; ``([(key, error) of each failure], OMP threads per worker)``.
    The caller holds the results lock."""
    from miar.study import engine

    with engine.connect(**cluster) as client:
        failures = execute_on(client, todo, notebook, results, desc, progress, reuse_kernel,
                              cluster.get("gpus_per_run", 0), deadline)
        return failures, _threads(client)


def execute_on(client, todo: list[Run], notebook: Path, results: Path, desc: str, progress: bool,
               reuse_kernel: bool = True, gpus_per_run: int = 0, deadline: float | None = None) -> list[tuple[str, str]]:
    """Clear and run ``todo`` through ``client``; the (key, error) of each failure (runs never started because
    of ``deadline`` are neither). The caller holds the lock."""
    from miar.study import engine
    from miar.study.worker import execute_run

    shutil.rmtree(results / STAGING, ignore_errors=True)  # a killed driver's attempts: no sweep is running
    staging = results / STAGING / f"{os.getpid()}-{time.time_ns()}"
    prepare(todo, results)
    fence = current_token(results)  # the caller holds the lock: this sweep's
    jobs = [job(r, notebook, results, staging, reuse_kernel, fence) for r in todo]
    try:
        tasks = engine.run_tasks(client, execute_run, jobs, gpus_per_run, deadline=deadline,
                                 on_stall=lambda j: give_up(results, j["key"]))
        return _gather(tasks, results, {r.key: r for r in todo}, desc, progress, len(jobs))
    finally:
        shutil.rmtree(results / STAGING, ignore_errors=True)  # abandoned attempts; a late writer finds none


def _threads(client) -> int | None:
    """The workers' OMP thread count for the sweep record; None when a worker does not answer (the record is
    written all the same)."""
    from miar.study import engine
    try:
        answers = engine.ask_workers(client, _omp)
    except engine.EngineError:
        return None
    found = {(i.get("omp_threads") or "1") for i in answers.values()}
    return int(found.pop()) if len(found) == 1 and next(iter(found), "1").isdigit() else 1


def _omp() -> dict:
    return {"omp_threads": os.environ.get("OMP_NUM_THREADS")}


def _gather(results_iter, results: Path, runs: dict, desc: str, progress: bool, total: int) -> list:
    failures = []
    bar = tqdm(total=total, desc=desc, unit="run", disable=not progress)
    try:
        for job_, res, _ in results_iter:
            key = job_["key"]
            err = None  # a complete record counts, whichever attempt committed it
            if status(runs[key], results) != "done":
                err = f"{type(res).__name__}: {res}" if isinstance(res, BaseException) else res["error"]
                err = err or "committed, but the record or its notebook is not whole"
            secs = res["seconds"] if isinstance(res, dict) else 0.0
            bar.update(1)
            bar.write(f"  {'ok    ' if err is None else 'FAILED'} {key} ({secs:.1f} s)")
            if err is not None:
                failures.append((key, err))
    finally:
        bar.close()
    return failures
