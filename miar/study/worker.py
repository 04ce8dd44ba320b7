"""What a Dask worker runs for a sweep: one run's notebook, in the worker's reused kernel, staged then committed.

:func:`execute_run` is the task (:mod:`miar.study.engine` submits it): it checks that this worker runs the same
``miar`` as the driver (:func:`fingerprint`), executes the notebook with papermill into a staging directory
(:mod:`miar.study.staging`), and commits it by a rename that only the first finisher of the run wins. The
worker's own stdout and stderr are never redirected: the kernel writes to its own file
(:func:`miar.study.papermill_engine.kernel_log`), whose part written during a failed run becomes the run's log.

The kernel (one per worker thread, reset between notebooks) gets this worker's ``miar`` first on
``PYTHONPATH``; its thread count comes from the worker's environment (``OMP_NUM_THREADS``: the LocalCluster
sets ``cores // workers`` when there are several, a Slurm job its allocation), which only a config with
``train.threads=0`` uses. :class:`KernelPlugin` stops the worker's kernels when the worker closes; a worker
killed outright takes its kernel with it (ipykernel exits when its parent changes).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from miar.records import is_complete
from miar.study import staging
from miar.study.lock import current_token, fenced

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # miar/
PACKAGE_ROOT = PACKAGE_DIR.parent  # the directory that holds miar/
_SOURCES = (".py", ".yaml", ".ipynb")
_fingerprint: str | None = None  # this process's, from its first call


def fingerprint(fresh: bool = False) -> str:
    """sha256 over this package's sources (``.py``, ``.yaml``, notebooks: names and bytes; milliseconds).

    A worker keeps the value of its first call (when the driver first checks it: the code it runs from then
    on), so edits to the files during a sweep do not turn its runs away; the driver takes a ``fresh`` one for
    each sweep, and a worker started before the sources changed is refused."""
    global _fingerprint
    if _fingerprint is not None and not fresh:
        return _fingerprint
    h = hashlib.sha256()
    for p in sorted(PACKAGE_DIR.rglob("*")):
        if p.suffix in _SOURCES and "__pycache__" not in p.parts and p.is_file():
            h.update(p.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    if fresh:
        return h.hexdigest()
    _fingerprint = h.hexdigest()
    return _fingerprint


def identity() -> dict:
    """What the driver checks on every worker (``client.run``): the package and where it lives."""
    from miar.records import git_commit
    return {"fingerprint": fingerprint(), "root": str(PACKAGE_ROOT), "pid": os.getpid(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS"), **git_commit()}


def gpu_slice(index: int, per_run: int, visible: list[str]) -> str:
    """The devices of LocalCluster worker ``index`` when each run takes ``per_run`` GPUs: its own slice."""
    mine = visible[index * per_run:(index + 1) * per_run]
    if len(mine) < per_run:
        raise RuntimeError(f"worker {index} needs GPUs {index * per_run}..{(index + 1) * per_run - 1}, "
                           f"only {len(visible)} visible")
    return ",".join(mine)


def _visible_gpus() -> list[str]:
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        return os.environ["CUDA_VISIBLE_DEVICES"].split(",")
    import torch  # lazy: only with --gpus-per-run on a LocalCluster
    return [str(i) for i in range(torch.cuda.device_count())]


class KernelPlugin(WorkerPlugin):
    """Stops the worker's Jupyter kernels when the worker closes (no orphan kernel). On a LocalCluster with
    ``--gpus-per-run K`` (``local_gpus=K``) it also gives worker ``i`` its own K devices (``CUDA_VISIBLE_DEVICES``,
    which its kernel inherits); an existing cluster's workers bring their own (Slurm sets it per job)."""

    name = "miar-kernels"

    def __init__(self, local_gpus: int = 0):
        self.local_gpus = local_gpus

    def setup(self, worker) -> None:
        if self.local_gpus and isinstance(worker.name, int):
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu_slice(worker.name, self.local_gpus, _visible_gpus())

    def teardown(self, worker) -> None:
        """Stop the kernels when the worker closes; not when the plugin is only removed (its sweep ended, or a
        plugin of the same name replaced it) while the worker runs other sweeps' notebooks in them."""
        import sys

        from distributed.core import Status
        if getattr(worker, "status", None) in (Status.running, Status.paused):
            return
        engine = sys.modules.get("miar.study.papermill_engine")
        if engine is not None:
            engine.shutdown_all()


def _kernel_env(job: dict) -> None:
    """This worker's ``miar`` first on the kernel's ``PYTHONPATH`` (set before the kernel starts)."""
    path = os.environ.get("PYTHONPATH", "")
    if path.split(os.pathsep)[:1] != [str(PACKAGE_ROOT)]:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), path) if p)


def _run_notebook(job: dict, output: Path, run_dir: str) -> tuple[str | None, bytes]:
    """Execute the notebook; (error or None, the kernel's output during the run)."""
    import papermill as pm  # lazy: the notebooks extra

    from miar.study import papermill_engine as kernel
    from miar.study.notebook_io import execute_notebook

    log = kernel.kernel_log()
    log.seek(0)
    log.truncate()  # the kernel shares this file's offset: it writes from here on
    err = None
    try:
        execute_notebook(job["notebook"], output, parameters=dict(job["parameters"], run_dir=run_dir),
                         progress_bar=False, log_output=False, cwd=job["cwd"], engine_name=kernel.ENGINE)
    except pm.PapermillExecutionError as e:
        err = f"{e.ename}: {e.evalue}"
    except Exception as e:  # kernel died, notebook unreadable, ...
        err = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if err is None and not is_complete(Path(job["cwd"], run_dir)):
        err = "the notebook finished without a complete run record"
    if err is not None or not job.get("reuse_kernel", True):
        kernel.shutdown()  # a failed kernel is not reused; --fresh-kernels: none is
    log.seek(0)
    return err, log.read() if err is not None else b""


FENCED = "its sweep had ended (results lock released): not committed"


def _results(job: dict) -> Path:
    return Path(job["cwd"]) / job.get("results", ".")


def execute_run(job: dict) -> dict:
    """The task: run ``job`` (built by :func:`miar.study.executor.job`) staged, then commit it.

    Returns ``{"key", "error", "seconds", "outcome"}``, outcome ``committed`` (this attempt's files are the
    run's), ``duplicate`` (another attempt committed first: this one is discarded), ``fenced`` (the sweep that
    started it no longer holds the results lock, see :mod:`miar.study.lock`: not run, if that was so when it
    started, else discarded) or ``refused``."""
    t0 = time.time()
    out = {"key": job["key"], "error": None, "outcome": "refused", "started": t0}
    if job.get("fingerprint") not in (None, fingerprint()):
        out["error"] = f"worker runs another miar ({fingerprint()[:12]}) than the driver ({job['fingerprint'][:12]})"
        return dict(out, seconds=time.time() - t0)
    if job.get("fence") is not None and current_token(_results(job)) != job["fence"]:
        return dict(out, error=FENCED, outcome="fenced", seconds=time.time() - t0)  # queued, started too late
    _kernel_env(job)
    cwd = Path(job["cwd"])
    attempt = cwd / job["staging"] / uuid.uuid4().hex[:16]  # absolute: a reused kernel's cwd is not trusted
    run_rel = attempt / "runs" / job["display"] / job["name"]
    nb = attempt / "notebooks" / job["display"] / f"{job['name']}.ipynb"
    nb.parent.mkdir(parents=True, exist_ok=True)
    err, log = _run_notebook(job, nb, str(run_rel))
    final_nb = cwd / job["output"]
    if nb.is_file():
        staging.relocate(nb, [(str(nb), str(final_nb)), (str(run_rel), job["parameters"]["run_dir"])])
    if err is not None:
        nb.with_suffix(".log").write_bytes(log)
    out["files"] = staging.digest([cwd / run_rel, nb])
    outcome = _commit(job, cwd / run_rel, nb, final_nb, failed=err is not None)
    staging.discard(attempt)
    return dict(out, error=FENCED if outcome == "fenced" else err, outcome=outcome, seconds=time.time() - t0)


def _commit(job: dict, run: Path, nb: Path, final_nb: Path, failed: bool) -> str:
    """Commit the staged run while its sweep still holds the results: ``committed``, ``duplicate`` or ``fenced``."""
    with fenced(_results(job), job.get("fence"), job["key"]) as current:
        if not current:
            return "fenced"
        won = staging.commit(run, Path(job["cwd"]) / job["parameters"]["run_dir"],
                             [(nb, final_nb), (nb.with_suffix(".log"), final_nb.with_suffix(".log"))],
                             stale=[] if failed else [final_nb.with_suffix(".log")])
    return "committed" if won else "duplicate"


__all__ = ["KernelPlugin", "execute_run", "fingerprint", "identity"]
