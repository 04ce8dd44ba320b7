"""Files written whole or not at all: staged beside their target, fsynced, renamed into place, the folder
fsynced (a crash never leaves a half-written file that looks complete). Run records (:mod:`miar.records`),
tables and the study's other files are written so.

Several files replaced together (:func:`write_together`): every new content is written and fsynced to a temporary
file beside its target first, and only when all of them are on disk are they renamed into place. A full disk or a
read-only folder while staging leaves every target as it was (and no temporary); ``miar collect`` writes its tables
so, which keeps ``runs.csv``, ``summary.csv``, ``comparisons.csv`` and ``summary.json`` from disagreeing. A file
whose content would not change is left alone (not even its mtime moves), so a ``miar collect`` with nothing new
changes nothing under ``results/`` and the book has nothing to re-execute."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from pathlib import Path

from miar.errors import UserError

MIN_FREE_BYTES = 64 * 2**20


class RecordError(UserError, OSError):
    """The run directory cannot take a record (read-only, full, ...)."""


def check_writable(run_dir: Path, min_free: int = MIN_FREE_BYTES) -> None:
    """Create ``run_dir`` and prove a file can be written there and enough space is free (a directory
    this call created is removed again when the check fails: a refused run leaves nothing behind)."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / ".write-test", b"ok")
        (run_dir / ".write-test").unlink()
        free = shutil.disk_usage(run_dir).free
    except OSError as e:
        _remove_if_empty(run_dir, created)
        raise RecordError(f"{run_dir}: cannot write the run record here ({e.strerror or e})") from None
    if free < min_free:
        _remove_if_empty(run_dir, created)
        raise RecordError(f"{run_dir}: only {free // 2**20} MiB free; a run needs at least "
                          f"{min_free // 2**20} MiB")


def _remove_if_empty(run_dir: Path, created: bool) -> None:
    if created:
        try:
            run_dir.rmdir()
        except OSError:
            pass


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable way to read it is to set it back at once
    os.umask(mask)
    return mask


def stage(path: Path, data: str | bytes) -> str:
    """Write ``data`` to a new temporary file beside ``path``, fsynced, with the permissions a plain ``open``
    would give (0666 less the umask, not ``mkstemp``'s 0600); returns its name. A full disk or a read-only
    folder: one line naming ``path`` (RecordError), no temporary left."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise RecordError(f"{path}: cannot write ({e.strerror or e})") from e
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise RecordError(f"{path}: cannot write ({e.strerror or e})") from e
        raise
    return tmp


def fsync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` survive a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: str | bytes) -> None:
    """:func:`stage` the data beside ``path``, rename it over ``path``, fsync the directory."""
    path = Path(path)
    tmp = stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise RecordError(f"{path}: cannot write ({e.strerror or e})") from e
        raise
    fsync_dir(path.parent)


def csv_text(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def unchanged(path: Path, data: str | bytes) -> bool:
    """True when ``path`` already holds exactly ``data`` (text compared as UTF-8 bytes)."""
    want = data.encode() if isinstance(data, str) else data
    try:
        return path.is_file() and path.stat().st_size == len(want) and path.read_bytes() == want
    except OSError:
        return False


def write_together(files: dict[Path, str | bytes]) -> list[Path]:
    """Replace every ``path`` whose content changes with its data, all or (up to the renames) none; the paths
    written (files already holding their data are skipped)."""
    files = {Path(p): d for p, d in files.items() if not unchanged(Path(p), d)}
    staged: dict[Path, str] = {}
    try:
        for path, data in files.items():
            staged[Path(path)] = stage(Path(path), data)
    except BaseException:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    for path, tmp in staged.items():
        os.replace(tmp, path)
    for folder in {p.parent for p in staged}:
        fsync_dir(folder)
    return list(staged)


__all__ = ["MIN_FREE_BYTES", "RecordError", "atomic_write", "check_writable", "csv_text", "fsync_dir", "stage",
           "unchanged", "write_together"]
