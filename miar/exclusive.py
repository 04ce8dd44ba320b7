"""One writer per run directory, and a complete record is replaced only when asked.

:func:`exclusive_run_dir` holds an exclusive :mod:`filelock` on ``<run_dir>/.lock`` (an ``flock``: the kernel
drops it when the holder dies, even by SIGKILL) while a run trains and writes its record; a second writer is
refused at once with a one-line :class:`~miar.records.RecordError`. A run directory that already holds a
complete record is refused too unless ``overwrite``; with it, ``metrics.json`` (the completion mark) is removed
first, so an overwrite that fails half-way leaves an incomplete record, never a mix that looks complete.
The sweep has its own lock on the whole results directory (:mod:`miar.study.lock`).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from miar.records import RecordError, is_complete

LOCK = ".lock"


@contextmanager
def exclusive_run_dir(run_dir: Path, overwrite: bool = False):
    """Hold ``run_dir``'s writer lock; refuse a complete record unless ``overwrite``. ``run_dir`` must exist."""
    run_dir = Path(run_dir)
    lock = FileLock(run_dir / LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RecordError(f"{run_dir}: another process is writing a run record here; wait for it "
                          f"or use another --run-dir") from None
    try:
        if is_complete(run_dir):
            if not overwrite:
                raise RecordError(f"{run_dir}: holds a complete run record; pass --overwrite to replace it "
                                  f"or use another --run-dir")
            (run_dir / "metrics.json").unlink()
        yield
    finally:
        lock.release()


__all__ = ["exclusive_run_dir", "LOCK"]
