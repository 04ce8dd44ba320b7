"""The driver's task loop: submit one task per job, yield each result as it completes, and give up on the runs
of a worker that stops answering mid-run.

A worker proves it is alive by its heartbeat to the scheduler (every 0.5 to 5 s, from its event loop; a run
executes in a Jupyter kernel, another process, so a busy worker still beats). :class:`Watchdog` reads each
worker's last heartbeat from the scheduler and notes, on this process's clock, when it last moved (the two
clocks are never compared). A worker that processes one of this driver's tasks and has not beaten for
:func:`stall_timeout` seconds (stopped by SIGSTOP, swapping, wedged) has stopped answering: each of this
driver's tasks on it is cancelled and yielded as a :class:`WorkerStalled` error (the run is reported failed,
one clear line), ``on_stall`` fences its commit (:func:`miar.study.lock.give_up`: should the worker resume, what
it writes is discarded), and the worker is retired from the scheduler so that no further task goes to it. The
other runs go on, on the workers that answer; when none is left (a LocalCluster of one worker), the runs not
started are given up too, so the sweep ends. The caller writes its records as after any failure.

The timeout is :data:`STALL_S` (120 s) unless ``$MIAR_WORKER_STALL_S`` says otherwise: far beyond any pause of a
live worker's heartbeat on a loaded machine (a garbage collection, a burst of swapping: seconds), yet short
beside a real run (minutes) and beside Dask's own ``worker-ttl`` (300 s), after which the scheduler would drop
the worker and silently run the task again elsewhere.
"""

from __future__ import annotations

import math
import os
import time

from miar.errors import ConfigError, UserError

STALL_S = 120.0  # default seconds without a heartbeat before a worker's runs are given up (see the docstring)
STALL_ENV = "MIAR_WORKER_STALL_S"
POLL_S = 1.0  # how often the loop looks up from waiting for a result
RPC_TIMEOUT_S = 30.0  # a scheduler query that takes longer is skipped (checked again at the next look)


class WorkerStalled(UserError, RuntimeError):
    """The worker running a task stopped answering; the task was given up."""


def stall_timeout() -> float:
    """Seconds without a heartbeat after which a worker's runs are given up; one line for a bad
    ``$MIAR_WORKER_STALL_S`` (check it before any work starts)."""
    raw = os.environ.get(STALL_ENV, "").strip()
    if not raw:
        return STALL_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{STALL_ENV}={raw!r}: must be a positive number of seconds")
    return value


class Watchdog:
    """Which workers stopped answering, and this driver's tasks on them (see the module docstring)."""

    def __init__(self, client, stall_s: float):
        self.client, self.stall_s = client, stall_s
        self.every = max(0.5, min(5.0, stall_s / 4))
        self.beats: dict[str, tuple[float, float]] = {}  # worker -> (its last heartbeat, when we saw it move)
        self.next, self.retired = time.monotonic(), set()

    def _silent(self) -> tuple[dict[str, float], list[str]]:
        """``{worker: seconds since its heartbeat last moved}`` for those silent longer than the timeout, and
        the workers that still answer and take tasks (both empty when it is not time to look)."""
        now = time.monotonic()
        if now < self.next:
            return {}, []
        self.next = now + self.every
        try:
            workers = self.client.sync(self.client.scheduler.identity, n_workers=-1,
                                       callback_timeout=RPC_TIMEOUT_S).get("workers", {})
        except (TimeoutError, OSError):
            return {}, []
        silent = {}
        for addr, info in workers.items():
            beat, seen = info.get("last_seen"), self.beats.get(addr)
            if seen is None or seen[0] != beat:
                self.beats[addr] = (beat, now)
            elif now - seen[1] > self.stall_s:
                silent[addr] = now - seen[1]
        working = [a for a, info in workers.items() if a not in silent and a not in self.retired
                   and info.get("status", "running") == "running"]
        return silent, working

    def given_up(self, pending: dict) -> list[tuple[str, str]]:
        """``[(task key, reason)]`` of the tasks in ``pending`` (key -> future) on a worker that stopped
        answering, each such worker retired from the scheduler; all of them once no worker is left that
        answers (the tasks still queued would wait for one forever: the sweep ends, its rerun resumes)."""
        silent, working = self._silent()
        if not silent:
            return []
        try:
            processing = self.client.sync(self.client.scheduler.processing, callback_timeout=RPC_TIMEOUT_S)
        except (TimeoutError, OSError):
            return []
        out = []
        for addr, secs in sorted(silent.items()):
            mine = [k for k in processing.get(addr, []) if k in pending]
            out += [(k, f"worker {addr} stopped answering mid-run (no heartbeat for {secs:.0f} s, limit "
                        f"{self.stall_s:g} s: ${STALL_ENV}); the run is given up and nothing it writes is "
                        f"committed") for k in mine]
            if mine:
                self._retire(addr)
        if out and not working:
            taken = {k for k, _ in out}
            out += [(k, f"not run: no worker is left that answers ({', '.join(sorted(silent))} stopped "
                        f"answering, limit {self.stall_s:g} s: ${STALL_ENV})") for k in pending if k not in taken]
        return out

    def _retire(self, addr: str) -> None:
        """No further task to ``addr``: retired at once (its status leaves ``running``), removed once the
        scheduler has what it holds; the call returns after :data:`RPC_TIMEOUT_S` at most."""
        if addr in self.retired:
            return
        self.retired.add(addr)
        try:
            self.client.sync(self.client.scheduler.retire_workers, workers=[addr], close_workers=False,
                             remove=True, callback_timeout=RPC_TIMEOUT_S)
        except Exception:  # the scheduler could not finish (the worker holds data it cannot fetch): still retiring
            pass


def _finished(client, futures: list, timeout_s: float) -> list:
    """The futures among ``futures`` that are done, waiting up to ``timeout_s`` for the first one."""
    from distributed import wait
    try:
        with client.as_current():  # wait() asks for a default client; this driver never sets one
            wait(futures, timeout=timeout_s, return_when="FIRST_COMPLETED")
    except TimeoutError:
        return []
    return [f for f in futures if f.done()]


def run_tasks(client, fn, jobs: list[dict], gpus_per_run: int = 0, key: str = "miar", deadline: float | None = None,
              on_stall=None):
    """Submit ``fn(job)`` for each job (in order) and yield ``(job, result or exception, submitted_at)`` as they
    complete. The futures are cancelled if the caller stops early (Ctrl-C included). A task whose worker stops
    answering is yielded with a :class:`WorkerStalled` error after ``on_stall(job)`` (module docstring).

    With ``deadline`` (a ``time.time()`` value) jobs are submitted as the workers free up (at most one per worker
    thread in flight) and none after the deadline: the jobs in flight finish, the rest are never started."""
    resources = {"GPU": gpus_per_run} if gpus_per_run else None
    token = f"{key}-{os.getpid()}-{time.time_ns()}"
    submitted, pending, following = {}, {}, 0
    window = len(jobs) if deadline is None else max(1, sum(client.nthreads().values()))
    watch = Watchdog(client, stall_timeout())

    def submit(first: bool = False) -> None:
        """The next job, if any is left and (after the first window) the deadline has not passed."""
        nonlocal following
        if following < len(jobs) and (first or deadline is None or time.time() < deadline):
            f = client.submit(fn, jobs[following], key=f"{token}-{following}", pure=False, resources=resources,
                              priority=-following)
            submitted[f.key], pending[f.key] = (jobs[following], time.time()), f
            following += 1

    for _ in range(min(window, len(jobs))):
        submit(first=True)
    try:
        while pending:
            for fut in sorted(_finished(client, list(pending.values()), POLL_S), key=lambda f: submitted[f.key][1]):
                del pending[fut.key]
                try:
                    res = fut.result()
                except Exception as e:  # the task raised, or killed workers too often (KilledWorker)
                    res = e
                submit()
                job, at = submitted[fut.key]
                yield job, res, at
            for k, why in watch.given_up(pending):
                client.cancel([pending.pop(k)], force=True)
                job, at = submitted[k]
                if on_stall is not None:
                    on_stall(job)
                submit()
                yield job, WorkerStalled(why), at
    finally:
        client.cancel(list(pending.values()), force=True)


__all__ = ["STALL_ENV", "STALL_S", "Watchdog", "WorkerStalled", "run_tasks", "stall_timeout"]
