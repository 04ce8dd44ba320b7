"""Exactly once on top of at-least-once: a run is written into a staging directory and committed by a rename.

Dask reruns a task whose worker died, and a worker that only looked dead may still finish: the same run can
execute twice, at the same time or one after the other. Each execution (an *attempt*) therefore writes only
under ``DIR/.staging/<sweep>/<attempt>/`` (``runs/<experiment>/s<seed>/`` and
``notebooks/<experiment>/s<seed>.ipynb``, same file system as ``DIR``) and then :func:`commit` moves its run
directory into place with one ``rename(2)``. The driver never creates the final run directory, so the first
finisher's rename succeeds and every later one fails (``ENOTEMPTY``/``EEXIST``: the target holds a record); a
loser discards its attempt. Only the winner then moves its notebook (and, for a failed run, its log) beside
the record, so the files of one run always come from one attempt.

A failed attempt commits an empty or partial run directory, as the local pool used to leave: the run reads
as incomplete and the next sweep clears it and redoes it; a later successful attempt of the same sweep may
still replace such a directory (``rename`` replaces an empty one), never a record. If a winner dies between
its two renames, the record has no notebook: :func:`miar.study.plan.status` calls the run incomplete and the
next sweep redoes it.

The notebook ran with the staging run directory as its ``run_dir`` parameter; :func:`relocate` rewrites that
path (and the staged notebook's own, in papermill's metadata) to the final ones everywhere in the notebook
(parameters, the injected cell, printed output), so the committed notebook reads as if it had run in place
(``miar collect`` cross-checks that parameter).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

from miar.records import atomic_write

_LOST = (errno.ENOTEMPTY, errno.EEXIST)


def _replace(value, pairs: list[tuple[str, str]]):
    if isinstance(value, str):
        for old, new in pairs:
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_replace(v, pairs) for v in value]
    if isinstance(value, dict):
        return type(value)((k, _replace(v, pairs)) for k, v in value.items())
    return value


def relocate(notebook: Path, pairs: list[tuple[str, str]]) -> None:
    """Rewrite every occurrence of each ``(old, new)`` path string in ``notebook``'s text fields, in order."""
    import nbformat  # lazy: the notebooks extra

    nb = nbformat.read(str(notebook), as_version=4)
    atomic_write(notebook, nbformat.writes(nbformat.from_dict(_replace(nb, pairs))))


def digest(paths: list[Path]) -> dict[str, str]:
    """sha256 of each file under ``paths`` (files or directories), by path relative to its top."""
    out = {}
    for top in paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else []
        for f in files:
            out[str(Path(top.name) / f.relative_to(top)) if f != top else top.name] = \
                hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(staged_run: Path, final_run: Path, files: list[tuple[Path, Path]], stale: list[Path] = ()) -> bool:
    """Move ``staged_run`` to ``final_run`` by one rename; if that won, move each ``(staged, final)`` file
    into place and remove the ``stale`` paths. False (nothing moved) when another attempt committed first."""
    staged_run.mkdir(parents=True, exist_ok=True)  # a run that failed before training: an empty directory
    final_run.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staged_run, final_run)
    except OSError as e:
        if e.errno in _LOST:
            return False
        raise
    _fsync_dir(final_run.parent)
    for src, dst in files:
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            _fsync_dir(dst.parent)
    for p in stale:
        p.unlink(missing_ok=True)
    return True


def discard(attempt: Path) -> None:
    """Remove an attempt's staging directory (a lost or abandoned attempt)."""
    shutil.rmtree(attempt, ignore_errors=True)


__all__ = ["commit", "digest", "discard", "relocate"]
