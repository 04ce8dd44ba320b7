"""One sweep (or alignment, or tuning driver) at a time on a results directory, and no commit after it ends.

:func:`results_lock` holds ``results/.sweep.lock`` for the whole sweep and writes a fresh token into
``results/.sweep.lock.token``; the workers' jobs carry that token (:func:`current_token`, read by the executor
while the lock is held). A worker commits a run only inside :func:`fenced`, which holds
``results/.sweep.lock.fence`` shared and checks the token is still there. On its way out the driver takes the
fence exclusively and removes the token: a commit already under way finishes first, and every later one (a run
a worker kept executing after Ctrl-C, its scheduler too wedged to cancel it) finds no token and is discarded,
never written into a results directory whose driver is gone or that another sweep now holds.

A run the driver gave up on while its sweep goes on (its worker stopped answering mid-run:
:mod:`miar.study.tasks`) is fenced the same way by :func:`give_up`, which lists its key in
``results/.sweep.lock.given-up`` (cleared with the token): should the worker resume, its commit is discarded.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from miar.config import ConfigError
from miar.records import atomic_write

TOKEN, FENCE = ".sweep.lock.token", ".sweep.lock.fence"  # beside the lock (and ignored by git with it)
GIVEN_UP = ".sweep.lock.given-up"  # keys of the runs this sweep gave up on, one a line
FENCE_WAIT_S = 10.0  # how long the driver leaving waits for a commit in progress (one rename: milliseconds)


class SweepLocked(ConfigError):
    """Another sweep holds the results directory."""


@contextmanager
def results_lock(results: Path):
    """An exclusive lock on ``results/.sweep.lock`` for the whole sweep (:mod:`filelock`, an ``flock`` on
    Unix: the kernel drops it when the process dies, even by SIGKILL, so a stale lock never blocks the
    next sweep). The holder's pid is kept beside it, in ``.sweep.lock.pid``, for the refusal message.
    Yields the token that fences this holder's commits (see the module docstring)."""
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
        (results / GIVEN_UP).unlink(missing_ok=True)  # a killed driver's list: its runs were never this sweep's
        token = uuid.uuid4().hex
        atomic_write(results / TOKEN, token)
        yield token
    finally:
        try:
            _revoke(results)
        finally:
            lock.release()


@contextmanager
def _flock(path: Path, kind: int, wait_s: float | None):
    """``flock(kind)`` on ``path`` (created as other files are, 0666 less the umask); without the lock after
    ``wait_s`` seconds (None: wait as long as it takes). Yields whether it is held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, kind | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.01)
        yield True
    finally:
        os.close(fd)  # closing drops the flock


def _revoke(results: Path) -> None:
    """Remove the token once no commit is under way (or after :data:`FENCE_WAIT_S`: a worker stopped inside its
    commit does not keep the driver from leaving)."""
    with _flock(results / FENCE, fcntl.LOCK_EX, FENCE_WAIT_S):
        (results / TOKEN).unlink(missing_ok=True)
        (results / GIVEN_UP).unlink(missing_ok=True)


def give_up(results: Path, key: str) -> None:
    """Fence the commit of run ``key`` for the rest of this sweep (call it holding the lock): a commit of it
    already under way finishes first (up to :data:`FENCE_WAIT_S`), any later one is discarded."""
    results = Path(results)
    with _flock(results / FENCE, fcntl.LOCK_EX, FENCE_WAIT_S):
        with open(results / GIVEN_UP, "a", encoding="utf-8") as f:
            f.write(key + "\n")


def _given_up(results: Path) -> set[str]:
    try:
        return set((Path(results) / GIVEN_UP).read_text(encoding="utf-8").splitlines())
    except OSError:
        return set()


def current_token(results: Path) -> str | None:
    """The token of the sweep that holds ``results`` now (call it holding the lock); None if there is none."""
    try:
        return (Path(results) / TOKEN).read_text()
    except OSError:
        return None


@contextmanager
def fenced(results: Path, token: str | None, key: str | None = None):
    """Around a worker's commit of run ``key``: yields True while ``token``'s sweep still holds ``results`` and
    has not given the run up (:func:`give_up`), and keeps it from leaving until the commit is done. A job
    without a token (from a driver older than the fence) commits."""
    if token is None:
        yield True
        return
    with _flock(Path(results) / FENCE, fcntl.LOCK_SH, None):
        yield current_token(results) == token and (key is None or key not in _given_up(results))
