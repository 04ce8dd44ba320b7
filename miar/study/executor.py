"""``miar sweep NAME``: execute a sweep's parameterized notebook once per (experiment, variant, seed).

Each run (:mod:`miar.study.plan`) is executed with papermill (parameters ``experiment, seed, overrides,
run_dir``) into ``DIR/notebooks/<experiment>/s<seed>.ipynb`` and records into ``DIR/runs/<experiment>/s<seed>/``,
where ``<experiment>`` includes ``+<variant>``.
A run whose record is complete with the same resolved ``config.yaml`` text is skipped; any other existing
run directory is cleared and redone. Each worker keeps one Jupyter kernel for its runs and resets its
namespace between them (:mod:`miar.study.papermill_engine`; ``--fresh-kernels`` starts one per run). Failed
runs keep their executed notebook (and ``<run>.log``, the kernel's stdout/stderr); the others go on, and the
command exits 1 naming the failures.

Threads: torch uses ``train.threads`` (default 1: tiny models run fastest on one thread and a fixed count keeps
CPU results bit-identical), and ``env.json`` records the threads used. With ``--workers N`` each kernel also gets
``OMP_NUM_THREADS=MKL_NUM_THREADS=max(1, cores // N)`` in its environment, which only a config with
``train.threads=0`` (all cores) takes its thread count from. The kernel also gets the directory holding this
``miar`` package first on ``PYTHONPATH``, so it runs the same code as the command.

Executed notebooks are written atomically (:mod:`miar.study.notebook_io`), and a run is complete only when its
record and its notebook are whole (:func:`miar.study.plan.status`). Ctrl-C (SIGINT) cancels the queued runs,
stops the workers and their kernels and exits 130; the next invocation redoes the interrupted runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from miar import config as C
from miar.records import is_complete
from miar.study.lock import results_lock
from miar.study.notebook_io import temporary
from miar.study.plan import Run, load_sweep, status
from miar.study.record import write_sweep_record

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds miar/


def _execute(job: dict) -> tuple[str, str | None, float]:
    """Worker (its own process): run one notebook with papermill. Returns (key, error or None, seconds).

    The worker's and the kernel's stdout/stderr go to ``<notebook>.log``, kept only when the run fails.
    With ``job["reuse_kernel"]`` the worker keeps one kernel for all its notebooks (:mod:`miar.study.papermill_engine`);
    its output goes to a worker file whose part written during a failed run is appended to that log.
    """
    t0 = time.time()
    os.environ.update(job["env"])
    log = _redirect_output(Path(job["output"]).with_suffix(".log"))
    import papermill as pm  # lazy: the notebooks extra; imported by the worker, once its output is redirected

    from miar.study import papermill_engine as kernel  # lazy: papermill again; registers the engine
    from miar.study.notebook_io import execute_notebook

    engine, kernel_from = None, 0
    if job.get("reuse_kernel"):
        if kernel.ReusedKernelEngine.kernel_log is None:
            kernel.ReusedKernelEngine.kernel_log = tempfile.TemporaryFile()
        engine, kernel_from = kernel.ENGINE, kernel.ReusedKernelEngine.kernel_log.seek(0, os.SEEK_END)
    err = None
    try:
        execute_notebook(job["notebook"], job["output"], parameters=job["parameters"],
                         progress_bar=False, log_output=False, cwd=job["cwd"], engine_name=engine)
    except pm.PapermillExecutionError as e:
        err = f"{e.ename}: {e.evalue}"
    except Exception as e:  # kernel died, notebook unreadable, ...
        err = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if err is None and not is_complete(job["run_dir"]):
        err = "the notebook finished without a complete run record"
    if err is None:
        log.unlink(missing_ok=True)
    elif engine is not None:  # keep the kernel's words on this run, and start the next run afresh
        kernel.shutdown()
        kernel.ReusedKernelEngine.kernel_log.seek(kernel_from)
        with open(log, "ab") as f:
            f.write(kernel.ReusedKernelEngine.kernel_log.read())
    return job["key"], err, time.time() - t0


def _redirect_output(log: Path) -> Path:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``log``, truncated."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return log


def _die_with_parent() -> None:
    """Pool-worker initializer: on Linux, ask the kernel to SIGKILL this worker when the sweep process
    dies (even by SIGKILL), so no orphan goes on writing into a run directory a later sweep redoes.
    The worker's Jupyter kernel then exits too (ipykernel polls its parent)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _kernel_env(workers: int) -> dict[str, str]:
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)}
    if workers > 1:
        threads = str(max(1, _cores() // workers))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    return env


def _job(run: Run, notebook: Path, results: Path, env: dict, reuse_kernel: bool = True) -> dict:
    run_dir = run.run_dir(results)
    return {"key": run.key, "notebook": str(notebook), "output": str(run.notebook_path(results)),
            "run_dir": str(run_dir), "cwd": os.getcwd(), "env": env, "reuse_kernel": reuse_kernel,
            "parameters": {"experiment": run.experiment, "seed": run.seed,
                           "overrides": list(run.overrides), "run_dir": str(run_dir)}}


def run_sweep(name: str, results: str | Path = "results", workers: int = 1, dry_run: bool = False,
              progress: bool = True, redo_changed: bool = False, fresh_kernels: bool = False,
              overrides: tuple[str, ...] = ()) -> int:
    """Execute the sweep's pending runs; 0 when every run is complete, 1 when some failed.

    Complete records are never modified: one whose config differs from the sweep's is an error
    unless ``redo_changed``. Incomplete run directories (a crash, a kill) are cleared and redone.
    Each worker keeps one kernel for its runs (:mod:`miar.study.papermill_engine`) unless ``fresh_kernels``.
    """
    if workers < 1:
        raise C.ConfigError(f"--workers must be >= 1, got {workers}")
    results = Path(results)
    notebook, runs = load_sweep(name, tuple(overrides))  # --set: every run's config
    if dry_run:
        return _run_sweep(name, results, notebook, runs, workers, True, progress, redo_changed, fresh_kernels)
    with results_lock(results):
        return _run_sweep(name, results, notebook, runs, workers, False, progress, redo_changed, fresh_kernels)


def _run_sweep(name, results, notebook, runs, workers, dry_run, progress, redo_changed, fresh_kernels) -> int:
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
    workers = min(workers, len(todo))
    jobs = _prepare(todo, notebook, results, _kernel_env(workers), reuse_kernel=not fresh_kernels)
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.time()
    failures = _execute_all(jobs, workers, f"sweep {name}", progress)
    threads = int(_kernel_env(workers).get("OMP_NUM_THREADS", 1))
    write_sweep_record(results, name, started, time.time() - t0, workers, threads, len(runs), len(jobs), failures,
                       fresh_kernels)
    if failures:
        for key, err in sorted(failures):
            nb = results / "notebooks" / f"{key}.ipynb"
            print(f"failed: {key} (notebook {nb}, log {nb.with_suffix('.log')}): {err}", file=sys.stderr)
        print(f"sweep {name}: {len(failures)} of {len(jobs)} runs failed", file=sys.stderr)
        return 1
    return 0


def _prepare(todo: list[Run], notebook: Path, results: Path, env: dict, reuse_kernel: bool) -> list[dict]:
    """Clear and create each pending run's directories; its job for the pool."""
    jobs = []
    for r in todo:
        if r.run_dir(results).exists():
            shutil.rmtree(r.run_dir(results))  # incomplete or for another config: redo cleanly
        r.run_dir(results).mkdir(parents=True)
        r.notebook_path(results).parent.mkdir(parents=True, exist_ok=True)
        r.notebook_path(results).unlink(missing_ok=True)  # a stale notebook never sits beside a new record
        temporary(r.notebook_path(results)).unlink(missing_ok=True)  # nor a killed run's temporary
        jobs.append(_job(r, notebook, results, env, reuse_kernel=reuse_kernel))
    return jobs


def _execute_all(jobs: list[dict], workers: int, desc: str, progress: bool) -> list[tuple[str, str]]:
    """Run the jobs in a pool of ``workers`` spawned processes; the (key, error) of each failure."""
    failures = []
    bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=not progress)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_die_with_parent)
    try:
        for fut in as_completed([pool.submit(_execute, j) for j in jobs]):
            key, err, secs = fut.result()
            bar.update(1)
            bar.write(f"  {'ok    ' if err is None else 'FAILED'} {key} ({secs:.1f} s)")
            if err is not None:
                failures.append((key, err))
    except BaseException:  # Ctrl-C (KeyboardInterrupt) or an error here: stop now, not after the queue
        stop_pool(pool)
        raise
    finally:
        bar.close()
    pool.shutdown()
    return failures


def stop_pool(pool: ProcessPoolExecutor, grace_s: float = 3.0) -> None:
    """Cancel the queued runs, then stop the pool's workers and everything they started (their Jupyter
    kernels run in sessions of their own, so they are found as descendants, not by process group):
    SIGTERM, ``grace_s`` seconds, SIGKILL. No orphan is left to write into a run directory."""
    import psutil  # lazy: a dependency of ipykernel (the notebooks extra)

    procs = []
    for w in list((getattr(pool, "_processes", None) or {}).values()):  # before shutdown forgets them
        try:
            w = psutil.Process(w.pid)
            procs += [w, *w.children(recursive=True)]
        except (psutil.NoSuchProcess, ValueError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
