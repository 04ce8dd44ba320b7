"""The driver's side of Dask distributed: a client on a LocalCluster or on an existing scheduler, checked
workers, tasks submitted and gathered, Ctrl-C.

:func:`connect` yields a :class:`distributed.Client`: by default to a ``LocalCluster`` started here (``workers``
processes, one thread each, no dashboard, 127.0.0.1), else to ``scheduler`` (``tcp://HOST:PORT``) or the
scheduler named by ``scheduler_file`` (``dask scheduler --scheduler-file``, dask-jobqueue). A scheduler that does
not answer within :data:`CONNECT_TIMEOUT_S` is one line (:class:`EngineError`). Every worker must run the same
``miar`` as the driver (:func:`miar.study.worker.fingerprint`), checked once on connecting and again by each
task; a mismatch is one line. A worker that does not answer within :data:`WORKER_ANSWER_S` is one line too
(:func:`ask_workers`). Each worker gets a :class:`~miar.study.worker.KernelPlugin` (its kernels stop with it)
registered under a name of this driver's own: two sweeps (or sweep, tune and align) on one cluster each add
theirs, and neither replaces the other's, whose teardown used to stop the kernels the other sweep was running.
``gpus_per_run`` makes each run ask for ``GPU`` worker resources (LocalCluster workers get that many each;
an existing cluster's workers declare theirs: ``dask worker --resources GPU=1``).

:func:`run_tasks` (:mod:`miar.study.tasks`) submits one task per job and yields each result as it completes,
giving up on the runs of a worker that stops answering mid-run. On Ctrl-C (or any error)
the futures are cancelled and, for a LocalCluster, its worker processes and their kernels are stopped
(SIGTERM, then SIGKILL) before the cluster closes, so nothing is left to write into the results. A LocalCluster
starts under :func:`miar.interrupt.held` (a Ctrl-C in its first seconds stops it whole, instead of leaving a
half-built cluster to Dask's ``atexit`` close and its traceback), and its workers' stderr goes to a temporary
file (:func:`_stderr_aside`: the terminal sends Ctrl-C to the whole process group, and each worker would print a
traceback of its own).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from miar.errors import ConfigError
from miar.interrupt import held
from miar.study.tasks import run_tasks  # noqa: F401 (the task loop, re-exported: engine.run_tasks)

KERNEL_DIR_ENV = "MIAR_KERNEL_DIR"  # where a LocalCluster worker's kernels keep their connection files
WORKER_ANSWER_S = 30.0  # a worker that does not answer the driver's check within this is one line, not a hang
CONNECT_TIMEOUT_S = 3  # a live scheduler answers in well under a second; the whole refusal stays under 10 s
WAIT_FOR_WORKERS_S = 120


class EngineError(ConfigError):
    """The cluster cannot be used (unreachable scheduler, another miar on a worker): one line."""


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def local_env(workers: int) -> dict[str, str]:
    """The LocalCluster workers' environment: threads split between them (their kernels inherit it)."""
    if workers <= 1:
        return {}
    threads = str(max(1, cores() // workers))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def _local_cluster(workers: int, gpus_per_run: int, scratch: Path):
    """Workers whose Dask scratch space and kernels' connection files are under ``scratch`` (this driver's own
    temporary folder, removed when it closes the cluster, however it ends: a worker it killed leaves none).
    The scheduler's scratch space goes there too: left to its default, this process's scheduler makes
    ``$TMPDIR/dask-scratch-space`` (with its lock files) and never removes it."""
    from distributed import LocalCluster
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, memory_limit=0, silence_logs=logging.ERROR,
                        local_directory=str(scratch / "dask"),
                        scheduler_kwargs={"local_directory": str(scratch / "dask")},
                        env={**local_env(workers), KERNEL_DIR_ENV: str(scratch / "kernels")},
                        resources={"GPU": gpus_per_run} if gpus_per_run else None)


def _remote_client(scheduler: str | None, scheduler_file: str | None):
    from distributed import Client
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise EngineError(f"{scheduler_file}: no such scheduler file (dask scheduler --scheduler-file writes it)")
    where = scheduler or scheduler_file
    try:
        return Client(scheduler, scheduler_file=scheduler_file, timeout=CONNECT_TIMEOUT_S,
                      set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise EngineError(f"cannot reach the Dask scheduler at {where} within {CONNECT_TIMEOUT_S} s "
                          f"({msg[:160]})") from None


def ask_workers(client, fn, timeout_s: float | None = None) -> dict:
    """``client.run(fn)`` (``{address: result}`` from every worker) within ``timeout_s`` (default
    :data:`WORKER_ANSWER_S`): a worker that is stopped, swapping or wedged never answers, and ``client.run``
    alone would wait for it forever. :class:`EngineError` naming the workers asked, if they do not all answer."""
    timeout_s = WORKER_ANSWER_S if timeout_s is None else timeout_s
    try:
        return client.sync(client._run, fn, callback_timeout=timeout_s)
    except TimeoutError:
        asked = sorted(client.scheduler_info().get("workers", {}))
        raise EngineError(f"a Dask worker did not answer within {timeout_s:.0f} s (workers: "
                          f"{', '.join(asked) or 'none'}); restart or remove the one that hangs") from None


def check_workers(client, wait_s: float = WAIT_FOR_WORKERS_S) -> dict:
    """Wait for a worker, check each runs this driver's ``miar``; ``{address: identity}``."""
    from miar.study.worker import fingerprint, identity
    try:
        client.wait_for_workers(1, timeout=wait_s)
    except TimeoutError:
        raise EngineError(f"no Dask worker joined the scheduler within {wait_s:.0f} s") from None
    ours = fingerprint(fresh=True)
    found = ask_workers(client, identity)
    for addr, info in sorted(found.items()):
        if info["fingerprint"] != ours:
            raise EngineError(f"worker {addr} runs another miar ({info['root']}, commit "
                              f"{str(info.get('commit'))[:12]}, sources {info['fingerprint'][:12]}) than "
                              f"this driver ({ours[:12]}); install the same commit on every worker")
    return found


def check_gpu_workers(client, gpus_per_run: int) -> None:
    """An existing cluster must have a worker declaring ``GPU`` resources for one run (else the runs would
    wait for one forever)."""
    have = {a: w.get("resources", {}).get("GPU", 0) for a, w in client.scheduler_info()["workers"].items()}
    if not any(n >= gpus_per_run for n in have.values()):
        raise EngineError(f"--gpus-per-run {gpus_per_run}: no worker of the cluster declares that many GPUs "
                          f"(most: {max(have.values(), default=0)}; dask worker --resources GPU=N)")


@contextmanager
def _stderr_aside():
    """Processes started in the block (the LocalCluster's workers) write their stderr to an anonymous temporary
    file, not to this process's terminal: a terminal's Ctrl-C reaches the whole process group, and each worker
    would print its own KeyboardInterrupt traceback while the driver stops them in order. A run's failure is in
    its own log (the kernel's output) and the driver names it; if the start itself fails (not an interrupt),
    the end of what was written meanwhile is shown, so the reason is not lost."""
    sys.stderr.flush()
    saved, log = os.dup(2), tempfile.TemporaryFile()
    os.dup2(log.fileno(), 2)
    failed = False
    try:
        yield
    except Exception:
        failed = True
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if failed:
            log.seek(0)
            sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
        log.close()  # the workers keep their own descriptor of it


@contextmanager
def connect(workers: int = 1, scheduler: str | None = None, scheduler_file: str | None = None,
            gpus_per_run: int = 0):
    """A checked client (see the module docstring); the LocalCluster, if any, is closed on exit."""
    from distributed import Client

    from miar.study.worker import KernelPlugin
    if scheduler is not None and scheduler_file is not None:
        raise EngineError("give --scheduler or --scheduler-file, not both")
    cluster = client = scratch = None
    try:
        if scheduler is None and scheduler_file is None:
            scratch = Path(tempfile.mkdtemp(prefix="miar-cluster-"))
            # Ctrl-C or SIGTERM now is delivered once there is a cluster to stop; held() ends first, so a start
            # that failed because the signal reached the workers reads as the interrupt it was
            with _stderr_aside(), held():
                cluster = _local_cluster(workers, gpus_per_run, scratch)
                client = Client(cluster, set_as_default=False)
        else:
            client = _remote_client(scheduler, scheduler_file)
        check_workers(client)
        if gpus_per_run and cluster is None:
            check_gpu_workers(client, gpus_per_run)
        plugin = f"{KernelPlugin.name}-{os.getpid()}-{time.time_ns()}"  # its own: another sweep's is not replaced
        client.register_plugin(KernelPlugin(gpus_per_run if cluster is not None else 0), name=plugin)
        yield client
    except BaseException:
        stop(client, cluster)
        raise
    else:
        _unregister(client, plugin)
        client.close()
        if cluster is not None:
            cluster.close()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _unregister(client, name: str) -> None:
    """Take this driver's plugin off the cluster (its teardown leaves the kernels: the workers go on)."""
    try:
        client.sync(client._unregister_worker_plugin, name=name, nanny=None, callback_timeout=WORKER_ANSWER_S)
    except Exception:  # an unresponsive worker or scheduler: the plugin stays, harmless (its teardown is idle)
        pass


def _family(cluster) -> list:
    """The LocalCluster's worker processes and their descendants (kernels), as psutil processes."""
    import psutil

    procs = []
    for nanny in list(getattr(cluster, "workers", {}).values()) if cluster is not None else []:
        if not getattr(nanny, "pid", None):  # psutil.Process(None) would be this process
            continue
        try:
            w = psutil.Process(nanny.pid)
            procs += [w, *w.children(recursive=True)]
        except (psutil.NoSuchProcess, TypeError, ValueError):
            pass
    return procs


def _end(procs: list, grace_s: float, term: bool = True) -> None:
    """SIGTERM each process (unless ``term`` is false), SIGKILL those alive after ``grace_s``."""
    import psutil  # lazy: the notebooks extra

    for p in procs:
        try:
            p.terminate() if term else p.kill()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


@contextmanager
def _quiet(logger: str = "distributed"):
    """Dask's own log lines muted: while this driver stops its workers, their nannies' complaints (a worker
    gone, a restart cancelled) are what was asked for, not news."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(level)


def stop(client, cluster, grace_s: float = 3.0) -> None:
    """Stop now: the LocalCluster's workers and their kernels (SIGTERM, ``grace_s``, SIGKILL), then close."""
    with _quiet():
        procs = _family(cluster)
        if procs:
            _end(procs, grace_s)
        for closing in (client, cluster):
            try:
                if closing is not None:
                    closing.close(timeout=grace_s)
            except Exception:  # already dead or timed out: the processes are gone anyway
                pass
        late = [p for p in _family(cluster) if p.pid not in {q.pid for q in procs}]  # a nanny restarted meanwhile
        if late:
            _end(late, grace_s, term=False)


__all__ = ["EngineError", "check_gpu_workers", "check_workers", "connect", "cores", "local_env", "run_tasks", "stop"]
