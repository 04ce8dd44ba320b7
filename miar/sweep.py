"""Batch runs: ``miar sweep NAME`` executes a parameterized notebook once per (experiment, variant, seed).

A sweep is a YAML file in ``miar/experiments/sweeps/`` (or any path)::

    notebook: train.ipynb          # in notebooks/ (or a path)
    seeds: [1111, 1112]            # default seeds of every entry
    runs:
      - experiment: smoke          # an experiment name or a YAML path
      - experiment: smoke
        variant: no_contrastive    # shown as experiment "smoke+no_contrastive"
        overrides: [loss.weight=0]
        seeds: [1111]              # optional, replaces the default seeds

Each run is executed with papermill (parameters ``experiment, seed, overrides, run_dir``) into
``DIR/notebooks/<experiment>/s<seed>.ipynb`` and records into ``DIR/runs/<experiment>/s<seed>/``, where
``<experiment>`` includes ``+<variant>``. A variant's config gets ``name=<experiment>+<variant>`` as its first
override, so the run record names its experiment. Every config is resolved strictly before anything runs.
A run whose record is complete with the same resolved ``config.yaml`` text is skipped; any other existing
run directory is cleared and redone. Each worker keeps one Jupyter kernel for its runs and resets its
namespace between them (:mod:`miar.kernel`; ``--fresh-kernels`` starts one per run). Failed runs keep
their executed notebook (and ``<run>.log``, the kernel's stdout/stderr); the others go on, and the
command exits 1 naming the failures.

Threads: with ``--workers N`` each kernel gets ``OMP_NUM_THREADS=MKL_NUM_THREADS=max(1, cores // N)`` in
its environment; torch takes its default thread count from it (with ``train.threads=0``, the default), so the
recorded config is unchanged and ``env.json`` records the threads used. The kernel also gets the directory
holding this ``miar`` package first on ``PYTHONPATH``, so it runs the same code as the command.

The notebook side of the contract is :func:`check_parameters`: papermill only warns about unknown
parameters, so each notebook snapshots its globals before the parameters cell and rejects any other name.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from miar import config as C
from miar.records import atomic_write, cpu_model, git_commit, is_complete

SWEEPS_DIR = C.EXPERIMENTS_DIR / "sweeps"
NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the directory that holds miar/
_SWEEP_KEYS = {"notebook", "seeds", "runs", "description"}
_ENTRY_KEYS = {"experiment", "variant", "overrides", "seeds"}
_VARIANT = re.compile(r"^[A-Za-z0-9_.-]+$")
KERNELS_FRESH, KERNELS_REUSED = "fresh per run", "one per worker, reset between runs"  # sweep records' "kernels"


# ----------------------------------------------------------------------------- notebook side

def check_parameters(before: dict, namespace: dict, allowed: dict[str, type]) -> dict:
    """The notebook's parameters, checked strictly.

    ``before`` is ``dict(globals())`` taken just before the parameters cell, ``namespace`` is ``globals()``
    now. Any public name that is new or rebound and not in ``allowed`` (name -> type) was injected by
    papermill without being a parameter: raise :class:`ConfigError`. Names starting with ``_`` (IPython's
    history variables) are ignored.
    """
    unknown = sorted(k for k, v in namespace.items() if not k.startswith("_") and k not in allowed
                     and (k not in before or before[k] is not v))
    if unknown:
        raise C.ConfigError(f"unknown notebook parameter(s) {unknown} (allowed: {sorted(allowed)})")
    params = {}
    for k, tp in allowed.items():
        if k not in namespace:
            raise C.ConfigError(f"notebook parameter {k!r} is not defined")
        v = namespace[k]
        if not isinstance(v, tp) or (tp is int and isinstance(v, bool)):
            raise C.ConfigError(f"notebook parameter {k}: expected {tp.__name__}, got {v!r}")
        params[k] = v
    return params


# ----------------------------------------------------------------------------- sweep definition

@dataclass(frozen=True)
class Run:
    """One notebook execution of a sweep."""

    experiment: str  # as given to the notebook: a name or a YAML path
    display: str  # directory name under runs/ and notebooks/: experiment stem (+variant)
    seed: int
    overrides: tuple[str, ...]
    config_yaml: str  # the resolved config, as the run record will hold it

    @property
    def name(self) -> str:
        return f"s{self.seed}"

    @property
    def key(self) -> str:
        return f"{self.display}/{self.name}"

    def run_dir(self, results: Path) -> Path:
        return Path(results) / "runs" / self.display / self.name

    def notebook_path(self, results: Path) -> Path:
        return Path(results) / "notebooks" / self.display / f"{self.name}.ipynb"


def sweep_path(name: str) -> Path:
    """A sweep name in ``miar/experiments/sweeps/`` or a path to a YAML file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise C.ConfigError(f"{p}: no such sweep file")
        return p
    p = SWEEPS_DIR / f"{name}.yaml"
    if not p.is_file():
        known = ", ".join(sorted(q.stem for q in SWEEPS_DIR.glob("*.yaml")))
        raise C.ConfigError(f"unknown sweep '{name}' (known: {known})")
    return p


def _seeds(value, where: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(type(s) is int for s in value):
        raise C.ConfigError(f"{where}: seeds must be a non-empty list of integers, got {value!r}")
    return value


def _entry_runs(entry, default_seeds, where: str) -> list[Run]:
    if not isinstance(entry, dict) or "experiment" not in entry:
        raise C.ConfigError(f"{where}: each run needs an 'experiment' key, got {entry!r}")
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise C.ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (valid: {sorted(_ENTRY_KEYS)})")
    exp, variant = str(entry["experiment"]), entry.get("variant")
    overrides = entry.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise C.ConfigError(f"{where}: overrides must be a list of 'key=value' strings")
    display = Path(exp).stem if Path(exp).suffix in (".yaml", ".yml") else exp
    if variant is not None:
        if not isinstance(variant, str) or not _VARIANT.match(variant):
            raise C.ConfigError(f"{where}: variant must match {_VARIANT.pattern}, got {variant!r}")
        display = f"{display}+{variant}"
        overrides = [f"name={display}", *overrides]
    seeds = _seeds(entry["seeds"], where) if "seeds" in entry else default_seeds
    runs = []
    for seed in seeds:
        try:
            cfg = C.load(exp, overrides=overrides, seed=seed)
        except C.ConfigError as e:
            raise C.ConfigError(f"{where} ({display}, seed {seed}): {e}") from None
        runs.append(Run(exp, display, seed, tuple(overrides), C.dump(cfg)))
    return runs


def load_sweep(name: str) -> tuple[Path, list[Run]]:
    """The notebook and the runs of a sweep, every config resolved strictly."""
    path = sweep_path(name)
    data = C._read_yaml(path)
    unknown = set(data) - _SWEEP_KEYS
    if unknown:
        raise C.ConfigError(f"{path}: unknown key(s) {sorted(unknown)} (valid: {sorted(_SWEEP_KEYS)})")
    nb = Path(data.get("notebook", "train.ipynb"))
    nb = nb if nb.is_absolute() or nb.parent != Path(".") else NOTEBOOKS_DIR / nb
    if not nb.is_file():
        raise C.ConfigError(f"{path}: notebook {nb} not found")
    default_seeds = _seeds(data.get("seeds", [1111]), f"{path}")
    entries = data.get("runs")
    if not isinstance(entries, list) or not entries:
        raise C.ConfigError(f"{path}: 'runs' must be a non-empty list")
    runs = [r for i, e in enumerate(entries) for r in _entry_runs(e, default_seeds, f"{path}: runs[{i}]")]
    seen: set[str] = set()
    for r in runs:
        if r.key in seen:
            raise C.ConfigError(f"{path}: run {r.key} appears twice")
        seen.add(r.key)
    return nb, runs


def status(run: Run, results: Path) -> str:
    """``done`` (complete, same config), ``changed`` (complete, other config), ``incomplete`` or ``new``."""
    d = run.run_dir(results)
    if is_complete(d):
        return "done" if (d / "config.yaml").read_text() == run.config_yaml else "changed"
    return "incomplete" if d.exists() else "new"


# ----------------------------------------------------------------------------- execution

def _execute(job: dict) -> tuple[str, str | None, float]:
    """Worker (its own process): run one notebook with papermill. Returns (key, error or None, seconds).

    The worker's and the kernel's stdout/stderr go to ``<notebook>.log``, kept only when the run fails.
    With ``job["reuse_kernel"]`` the worker keeps one kernel for all its notebooks (:mod:`miar.kernel`);
    its output goes to a worker file whose part written during a failed run is appended to that log.
    """
    t0 = time.time()
    os.environ.update(job["env"])
    log = Path(job["output"]).with_suffix(".log")
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    import papermill as pm

    engine, kernel_from = None, 0
    if job.get("reuse_kernel"):
        from miar import kernel

        if kernel.ReusedKernelEngine.kernel_log is None:
            import tempfile
            kernel.ReusedKernelEngine.kernel_log = tempfile.TemporaryFile()
        engine, kernel_from = kernel.ENGINE, kernel.ReusedKernelEngine.kernel_log.seek(0, os.SEEK_END)
    err = None
    try:
        pm.execute_notebook(job["notebook"], job["output"], parameters=job["parameters"],
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


class SweepLocked(C.ConfigError):
    """Another sweep holds the results directory."""


@contextmanager
def results_lock(results: Path):
    """An exclusive ``flock`` on ``results/.sweep.lock`` for the whole sweep; the kernel drops it
    when the process dies, even by SIGKILL, so a stale lock never blocks the next sweep."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / ".sweep.lock"
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise SweepLocked(f"{results}: another sweep is running on this results directory ({holder}); "
                          f"wait for it or use another --results") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}")
    f.flush()
    try:
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def run_sweep(name: str, results: str | Path = "results", workers: int = 1, dry_run: bool = False,
              progress: bool = True, redo_changed: bool = False, fresh_kernels: bool = False) -> int:
    """Execute the sweep's pending runs; 0 when every run is complete, 1 when some failed.

    Complete records are never modified: one whose config differs from the sweep's is an error
    unless ``redo_changed``. Incomplete run directories (a crash, a kill) are cleared and redone.
    Each worker keeps one kernel for its runs (:mod:`miar.kernel`) unless ``fresh_kernels``.
    """
    if workers < 1:
        raise C.ConfigError(f"--workers must be >= 1, got {workers}")
    results = Path(results)
    notebook, runs = load_sweep(name)
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
    _write_sweep_record(results, name, started, time.time() - t0, workers, len(runs), len(jobs), failures,
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
        jobs.append(_job(r, notebook, results, env, reuse_kernel=reuse_kernel))
    return jobs


def _execute_all(jobs: list[dict], workers: int, desc: str, progress: bool) -> list[tuple[str, str]]:
    """Run the jobs in a pool of ``workers`` spawned processes; the (key, error) of each failure."""
    from tqdm import tqdm

    failures = []
    bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=not progress)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=_die_with_parent) as pool:
        for fut in as_completed([pool.submit(_execute, j) for j in jobs]):
            key, err, secs = fut.result()
            bar.update(1)
            bar.write(f"  {'ok    ' if err is None else 'FAILED'} {key} ({secs:.1f} s)")
            if err is not None:
                failures.append((key, err))
    bar.close()
    return failures


def _write_sweep_record(results: Path, name: str, started: str, wall_s: float, workers: int,
                        n_runs: int, n_executed: int, failures: list, fresh_kernels: bool = False) -> Path:
    """``results/sweeps/<name>-<start>.json``: one invocation's wall time (a new file each time).

    ``complete_from_scratch`` is true when this invocation ran every run of the sweep and none
    failed: then ``wall_s`` is the time the whole sweep takes on this machine."""
    record = {"sweep": name, "started_utc": started, "wall_s": round(wall_s, 1), "workers": workers,
              "omp_threads_per_worker": int(_kernel_env(workers).get("OMP_NUM_THREADS", 1)),
              "kernels": KERNELS_FRESH if fresh_kernels else KERNELS_REUSED,
              "runs_in_sweep": n_runs, "runs_executed": n_executed, "runs_failed": len(failures),
              "complete_from_scratch": n_executed == n_runs and not failures,
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "cpu_model": cpu_model(),
              "load_average_end": [round(x, 2) for x in os.getloadavg()], **git_commit()}
    path = results / "sweeps" / f"{Path(name).stem}-{started.replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(record, indent=1) + "\n")
    return path


