"""One sweep (or alignment) at a time on a results directory."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from miar.config import ConfigError


class SweepLocked(ConfigError):
    """Another sweep holds the results directory."""


@contextmanager
def results_lock(results: Path):
    """An exclusive lock on ``results/.sweep.lock`` for the whole sweep (:mod:`filelock`, an ``flock`` on
    Unix: the kernel drops it when the process dies, even by SIGKILL, so a stale lock never blocks the
    next sweep). The holder's pid is kept beside it, in ``.sweep.lock.pid``, for the refusal message."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    holder = results / ".sweep.lock.pid"
    lock = FileLock(results / ".sweep.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        who = holder.read_text().strip() if holder.is_file() else "unknown"
        raise SweepLocked(f"{results}: another sweep is running on this results directory ({who or 'unknown'}); "
                          f"wait for it or use another --results") from None
    try:
        holder.write_text(f"pid {os.getpid()}")
        yield
    finally:
        lock.release()
