"""Several files replaced together: every new content is written and fsynced to a temporary file beside its
target first, and only when all of them are on disk are they renamed into place. A full disk or a read-only
folder while staging leaves every target as it was (and no temporary); ``miar collect`` writes its tables so,
which keeps ``runs.csv``, ``summary.csv``, ``comparisons.csv`` and ``summary.json`` from disagreeing."""

from __future__ import annotations

import os
from pathlib import Path

from miar.records import fsync_dir, stage


def write_together(files: dict[Path, str | bytes]) -> None:
    """Replace every ``path`` with its data, all or (up to the renames) none."""
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


__all__ = ["write_together"]
