"""Several files replaced together: every new content is written and fsynced to a temporary file beside its
target first, and only when all of them are on disk are they renamed into place. A full disk or a read-only
folder while staging leaves every target as it was (and no temporary); ``miar collect`` writes its tables so,
which keeps ``runs.csv``, ``summary.csv``, ``comparisons.csv`` and ``summary.json`` from disagreeing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from miar.records import RecordError, _umask


def _stage(path: Path, data: str | bytes) -> str:
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


def write_together(files: dict[Path, str | bytes]) -> None:
    """Replace every ``path`` with its data, all or (up to the renames) none."""
    staged: dict[Path, str] = {}
    try:
        for path, data in files.items():
            staged[Path(path)] = _stage(Path(path), data)
    except BaseException:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    for path, tmp in staged.items():
        os.replace(tmp, path)
    for folder in {p.parent for p in staged}:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = ["write_together"]
