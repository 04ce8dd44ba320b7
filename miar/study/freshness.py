"""Whether ``miar collect`` has anything to do: a digest of everything its tables are computed from.

``miar collect`` reads the run records and executed notebooks under ``results/`` and the package itself (the
declarations in ``miar/experiments/`` and the code that computes the tables). :func:`inputs_digest` hashes all of
it (names and bytes); a successful collect stores the digest in ``results/tables/inputs.sha256`` (committed with the
tables) beside :func:`outputs_digest` of what it wrote. A later collect whose inputs hash the same and whose outputs
are still as written has nothing to compute and changes nothing, which is what lets ``make book`` with nothing new
finish in seconds; an edited or deleted table is recomputed. ``miar collect --force`` recomputes regardless.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from miar.records import atomic_write

STAMP = Path("tables") / "inputs.sha256"
_INPUTS = ("runs", "notebooks")  # under results/: the records and their executed notebooks


def _package_fingerprint() -> str:
    from miar.study.worker import fingerprint  # sources: .py, .yaml, notebooks of this miar
    return fingerprint(fresh=True)


def _hash_files(h, root: Path, paths) -> None:
    for p in sorted(paths):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(rel.as_posix().encode() + b"\0")
            with open(p, "rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())


def inputs_digest(results: str | Path) -> str:
    """sha256 over this package's sources and every file (relative name and bytes) of ``results/runs`` and
    ``results/notebooks``; dot files (locks, staging) are left out."""
    root = Path(results)
    h = hashlib.sha256(_package_fingerprint().encode() + b"\n")
    for sub in _INPUTS:
        _hash_files(h, root, (root / sub).rglob("*"))
    return h.hexdigest()


def outputs_digest(results: str | Path) -> str:
    """sha256 over what collect writes: ``results/tables/*`` (but the stamp) and ``results/summary.json``."""
    root = Path(results)
    tables = [p for p in (root / "tables").glob("*") if p.name != STAMP.name]
    h = hashlib.sha256()
    _hash_files(h, root, [*tables, root / "summary.json"])
    return h.hexdigest()


def up_to_date(results: str | Path) -> bool:
    """True when the stamp's inputs digest equals the inputs' digest now and its outputs digest the outputs'."""
    try:
        inputs, outputs = (Path(results) / STAMP).read_text().split()[:2]
    except (OSError, ValueError):
        return False
    return (Path(results) / "summary.json").is_file() and outputs == outputs_digest(results) \
        and inputs == inputs_digest(results)


def mark(results: str | Path, digest: str) -> None:
    """Store ``digest`` (the inputs, taken before the collect that succeeded) and the outputs' digest now."""
    path = Path(results) / STAMP
    text = f"{digest} {outputs_digest(results)}\n"
    if not path.is_file() or path.read_text() != text:
        atomic_write(path, text)


__all__ = ["STAMP", "inputs_digest", "mark", "outputs_digest", "up_to_date"]
