"""One writer per run directory, and a complete record is replaced only when asked.

:func:`exclusive_run_dir` holds an exclusive :mod:`filelock` on ``<run_dir>/.lock`` (an ``flock``: the kernel
drops it when the holder dies, even by SIGKILL) while a run trains and writes its record; a second writer is
refused at once with a one-line :class:`~miar.records.RecordError`. The holder removes the lock file before it
lets go (a writer that locked the removed file sees that the path no longer names it and refuses too), so a
finished record holds no lock file; one killed mid-run leaves it, harmlessly (the flock died with it). A run directory that already holds a
complete record is refused too unless ``overwrite``; with it, ``metrics.json`` (the completion mark) is removed
first, so an overwrite that fails half-way leaves an incomplete record, never a mix that looks complete.
The sweep has its own lock on the whole results directory (:mod:`miar.study.lock`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from miar.records import RecordError, is_complete

LOCK = ".lock"


@contextmanager
def exclusive_run_dir(run_dir: Path, overwrite: bool = False):
    """Hold ``run_dir``'s writer lock; refuse a complete record unless ``overwrite``. ``run_dir`` must exist."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK
    lock = FileLock(path, timeout=0)
    busy = RecordError(f"{run_dir}: another process is writing a run record here; wait for it or use another --run-dir")
    try:
        lock.acquire()
    except Timeout:
        raise busy from None
    if not _holds(lock, path):  # we locked a file its holder had just removed: it was still writing
        lock.release()
        raise busy
    try:
        if is_complete(run_dir):
            if not overwrite:
                raise RecordError(f"{run_dir}: holds a complete run record; pass --overwrite to replace it "
                                  f"or use another --run-dir")
            (run_dir / "metrics.json").unlink()
        yield
    finally:
        path.unlink(missing_ok=True)  # removed while still held (see _holds), so the record keeps no lock file
        lock.release()


def _holds(lock: FileLock, path: Path) -> bool:
    """True when the file ``lock`` holds is still the one at ``path`` (same device and inode)."""
    try:
        held, now = os.fstat(lock._context.lock_file_fd), os.stat(path)
    except (OSError, AttributeError, TypeError):
        return True  # cannot tell (another filelock version): the flock alone decides
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


__all__ = ["exclusive_run_dir", "LOCK"]
