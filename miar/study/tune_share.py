"""Several drivers on one study: each trial belongs to the driver that asked (or took over) it.

A driver has a token and holds an exclusive lock on ``<storage>.drivers/<token>.lock`` while it runs (an
``flock``: the kernel drops it when the process dies, even by SIGKILL). Every trial it asks or takes over carries
the token as its ``driver`` user attribute. A trial left RUNNING is re-run only when its driver's lock is free
(the driver is gone) or it carries no token (a driver older than this module); a live driver's trials are
left to it, so no trial runs twice and no driver tells a trial another one told. Asking and taking over happen
under ``<storage>.drivers/ask.lock``, so two drivers never draw with the same sampler state nor take the same
orphan.

This needs a storage on a file system that the drivers share (the default SQLite file or ``journal:FILE``). On
a server database (another RDB URL) there is nowhere to hold the locks: a RUNNING trial is taken as a crashed
driver's, as before, so run one driver per study there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from miar.errors import ConfigError

ASK_WAIT_S = 120.0  # how long a driver waits for another one's ask before saying so


def storage_file(url: str) -> Path | None:
    """The file that holds the study at ``url`` (SQLite or journal); None for a server database."""
    if url.startswith("journal:"):
        return Path(url[len("journal:"):])
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///"):])
    return None


def create_storage(url: str) -> None:
    """Create a new study's file as other records are, 0666 less the umask: SQLite would make it 0644 whatever
    the umask (it then gives its journal the same mode), so a group-writable umask would not be honoured."""
    path = storage_file(url)
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o666, exist_ok=True)  # SQLite takes an empty file for a new database


def drivers_dir(url: str) -> Path | None:
    """Where the drivers of the study at ``url`` keep their locks; None for a server database."""
    path = storage_file(url)
    return None if path is None else path.with_name(path.name + ".drivers")


class Driver:
    """This process's claim on the trials it runs; a context manager that holds its liveness lock."""

    def __init__(self, url: str):
        self.dir = drivers_dir(url)
        self.token = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        self._lock = None

    def __enter__(self) -> Driver:
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(self.dir / f"{self.token}.lock", timeout=0)
            self._lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.release()
            (self.dir / f"{self.token}.lock").unlink(missing_ok=True)

    def alive(self, token: str | None) -> bool:
        """Whether the driver ``token`` still runs (this one does; a trial with no token has no live driver)."""
        if token is None or self.dir is None:
            return token == self.token
        if token == self.token:
            return True
        path = self.dir / f"{token}.lock"
        probe = FileLock(path, timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return True
        probe.release()
        path.unlink(missing_ok=True)
        return False

    @contextlib.contextmanager
    def asking(self):
        """Exclusive among the drivers of this study while trials are asked and taken over."""
        if self.dir is None:
            yield
            return
        lock = FileLock(self.dir / "ask.lock", timeout=ASK_WAIT_S)
        try:
            lock.acquire()
        except Timeout:
            raise ConfigError(f"{self.dir / 'ask.lock'}: another driver of this study has held it for over "
                              f"{ASK_WAIT_S:.0f} s") from None
        try:
            yield
        finally:
            lock.release()

    def claim(self, study, trial_id: int) -> None:
        study._storage.set_trial_user_attr(trial_id, "driver", self.token)


__all__ = ["Driver", "create_storage", "drivers_dir", "storage_file"]
