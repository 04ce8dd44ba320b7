"""A real Dask cluster on 127.0.0.1 for the tests: ``dask scheduler`` and ``dask worker`` processes on free ports,
each worker one thread and no nanny (one process: SIGKILL takes it down for good), stopped by PID.

A test module takes the two-worker cluster as its ``cluster`` fixture by importing
:func:`two_worker_cluster` (``from cluster import two_worker_cluster  # noqa: F401``): one per module."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """``dask scheduler`` + workers started here; :meth:`close` stops every PID it started."""

    def __init__(self, tmp: Path, env: dict):
        self.tmp, self.env, self.procs = tmp, env, []
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.scheduler_file = tmp / "scheduler.json"
        self._start([DASK, "scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
                     "--no-dashboard", "--scheduler-file", str(self.scheduler_file)], "scheduler")
        self.workers: list[subprocess.Popen] = []

    def _start(self, cmd: list[str], name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}-{len(self.procs)}.log", "wb")
        p = subprocess.Popen(cmd, cwd=self.tmp, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def start_worker(self) -> subprocess.Popen:
        w = self._start([DASK, "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                         "--host", "127.0.0.1", "--death-timeout", "60",
                         "--local-directory", str(self.tmp / "dask-scratch")], "worker")
        self.workers.append(w)
        return w

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client
        with Client(self.address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(n, timeout=timeout)

    def live_workers(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def kernels(self, worker: subprocess.Popen) -> list[psutil.Process]:
        try:
            return [p for p in psutil.Process(worker.pid).children(recursive=True)
                    if "ipykernel" in " ".join(p.cmdline())]
        except psutil.NoSuchProcess:
            return []

    def close(self) -> None:
        family = []
        for p in self.procs:
            try:
                family += [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for p in reversed(self.procs):  # workers first (their kernels stop in their teardown), then the scheduler
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
        _, alive = psutil.wait_procs(family, timeout=3)
        for p in alive:  # a kernel whose worker was killed and that has not noticed yet
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


@pytest.fixture(scope="module", name="cluster")
def two_worker_cluster(tmp_path_factory):
    """A scheduler and two workers for the module; a worker a failed test left stopped (SIGSTOP) is resumed
    before the cluster closes, so that it can be stopped in order."""
    from faultkit import env
    c = Cluster(tmp_path_factory.mktemp("dask"), env())
    try:
        c.start_worker()
        c.start_worker()
        c.wait_for_workers(2)
        yield c
    finally:
        for w in c.workers:
            if w.poll() is None:
                os.kill(w.pid, signal.SIGCONT)
        c.close()
