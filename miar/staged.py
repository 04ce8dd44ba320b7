"""Several files replaced together: every new content is written and fsynced to a temporary file beside its
target first, and only when all of them are on disk are they renamed into place. A full disk or a read-only
folder while staging leaves every target as it was (and no temporary); ``miar collect`` writes its tables so,
which keeps ``runs.csv``, ``summary.csv``, ``comparisons.csv`` and ``summary.json`` from disagreeing.

A file whose content would not change is left alone (not even its mtime moves), so a ``miar collect`` with
nothing new changes nothing under ``results/`` and the book has nothing to re-execute."""

from __future__ import annotations

import os
from pathlib import Path

from miar.records import fsync_dir, stage


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


__all__ = ["unchanged", "write_together"]
