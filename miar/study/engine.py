"""The driver's side of Dask distributed: a client on a LocalCluster or on an existing scheduler, checked
workers, tasks submitted and gathered, Ctrl-C.

:func:`connect` yields a :class:`distributed.Client`: by default to a ``LocalCluster`` started here (``workers``
processes, one thread each, no dashboard, 127.0.0.1), else to ``scheduler`` (``tcp://HOST:PORT``) or the
scheduler named by ``scheduler_file`` (``dask scheduler --scheduler-file``, dask-jobqueue). A scheduler that does
not answer within :data:`CONNECT_TIMEOUT_S` is one line (:class:`EngineError`). Every worker must run the same
``miar`` as the driver (:func:`miar.study.worker.fingerprint`), checked once on connecting and again by each
task; a mismatch is one line. Each worker gets :class:`~miar.study.worker.KernelPlugin` (its kernels stop with
it). ``gpus_per_run`` makes each run ask for ``GPU`` worker resources (LocalCluster workers get that many each;
an existing cluster's workers declare theirs: ``dask worker --resources GPU=1``).

:func:`run_tasks` submits one task per job and yields each result as it completes. On Ctrl-C (or any error)
the futures are cancelled and, for a LocalCluster, its worker processes and their kernels are stopped
(SIGTERM, then SIGKILL) before the cluster closes, so nothing is left to write into the results.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

from miar.errors import ConfigError

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


def _local_cluster(workers: int, gpus_per_run: int):
    from distributed import LocalCluster
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, memory_limit=0, silence_logs=logging.ERROR,
                        env=local_env(workers), resources={"GPU": gpus_per_run} if gpus_per_run else None)


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


def check_workers(client, wait_s: float = WAIT_FOR_WORKERS_S) -> dict:
    """Wait for a worker, check each runs this driver's ``miar``; ``{address: identity}``."""
    from miar.study.worker import fingerprint, identity
    try:
        client.wait_for_workers(1, timeout=wait_s)
    except TimeoutError:
        raise EngineError(f"no Dask worker joined the scheduler within {wait_s:.0f} s") from None
    ours = fingerprint(fresh=True)
    found = client.run(identity)
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
def connect(workers: int = 1, scheduler: str | None = None, scheduler_file: str | None = None,
            gpus_per_run: int = 0):
    """A checked client (see the module docstring); the LocalCluster, if any, is closed on exit."""
    from distributed import Client

    from miar.study.worker import KernelPlugin
    if scheduler is not None and scheduler_file is not None:
        raise EngineError("give --scheduler or --scheduler-file, not both")
    cluster = None
    if scheduler is None and scheduler_file is None:
        cluster = _local_cluster(workers, gpus_per_run)
        client = Client(cluster, set_as_default=False)
    else:
        client = _remote_client(scheduler, scheduler_file)
    try:
        check_workers(client)
        if gpus_per_run and cluster is None:
            check_gpu_workers(client, gpus_per_run)
        client.register_plugin(KernelPlugin(gpus_per_run if cluster is not None else 0), name=KernelPlugin.name)
        yield client
    except BaseException:
        stop(client, cluster)
        raise
    else:
        client.close()
        if cluster is not None:
            cluster.close()


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


def stop(client, cluster, grace_s: float = 3.0) -> None:
    """Stop now: the LocalCluster's workers and their kernels (SIGTERM, ``grace_s``, SIGKILL), then close."""
    import psutil  # lazy: the notebooks extra

    procs = _family(cluster)
    if procs:
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
    for closing in (client, cluster):
        try:
            if closing is not None:
                closing.close(timeout=grace_s)
        except Exception:  # already dead or timed out: the processes are gone anyway
            pass
    late = [p for p in _family(cluster) if p.pid not in {q.pid for q in procs}]  # what a nanny restarted meanwhile
    if late:
        for p in late:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(late, timeout=grace_s)


def run_tasks(client, fn, jobs: list[dict], gpus_per_run: int = 0, key: str = "miar", deadline: float | None = None):
    """Submit ``fn(job)`` for each job (in order) and yield ``(job, result or exception, submitted_at)`` as they
    complete. The futures are cancelled if the caller stops early (Ctrl-C included).

    With ``deadline`` (a ``time.time()`` value) jobs are submitted as the workers free up (at most one per worker
    thread in flight) and none after the deadline: the jobs in flight finish, the rest are never started."""
    from distributed import as_completed

    resources = {"GPU": gpus_per_run} if gpus_per_run else None
    token = f"{key}-{os.getpid()}-{time.time_ns()}"
    submitted, futures = {}, []
    window = len(jobs) if deadline is None else max(1, sum(client.nthreads().values()))

    def submit(i: int):
        f = client.submit(fn, jobs[i], key=f"{token}-{i}", pure=False, resources=resources, priority=-i)
        submitted[f.key] = (jobs[i], time.time())
        futures.append(f)
        return f

    for i in range(min(window, len(jobs))):
        submit(i)
    following = min(window, len(jobs))
    try:
        with client.as_current():
            done = as_completed(futures)
        for fut in done:
            job, at = submitted[fut.key]
            try:
                res = fut.result()
            except Exception as e:  # the task raised, or killed workers too often (KilledWorker)
                res = e
            if following < len(jobs) and (deadline is None or time.time() < deadline):
                done.add(submit(following))
                following += 1
            yield job, res, at
    finally:
        client.cancel(futures, force=True)


__all__ = ["EngineError", "check_gpu_workers", "check_workers", "connect", "cores", "local_env", "run_tasks", "stop"]
