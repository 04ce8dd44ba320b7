"""Up-front checks of the study commands' arguments (``sweep``, ``align``, ``tune``): each bad value is one
:class:`~miar.errors.ConfigError` line naming the option, raised before a results folder, a lock, a database
or a cluster is created.

:func:`check_cluster` reads the Dask options (:mod:`miar.study.engine`), :func:`check_tune` the search's
numbers, :func:`check_storage` an Optuna storage (a SQLite file must be a sound SQLite database, a journal a
file of JSON lines, any other URL a dialect SQLAlchemy knows; ``must_exist`` for ``--report``, which reads a
study and never creates one).
"""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

from miar.errors import ConfigError

SQLITE_HEADER = b"SQLite format 3\x00"
PROBE_TIMEOUT_S = 3  # as engine.CONNECT_TIMEOUT_S: a live scheduler accepts a TCP connection at once


def check_results(results, option: str = "--results") -> Path:
    """A folder option (``--results``, ``--run-dir``): a non-empty path (an empty one would resolve to the
    current folder, or, from a notebook, to the package's own ``notebooks/``)."""
    if results is None or not str(results).strip():
        raise ConfigError(f"{option}: empty path; name the folder")
    return Path(results)


def scheduler_address(address: str, what: str = "--scheduler") -> tuple[str, int]:
    """``(host, port)`` of ``tcp://HOST:PORT`` (or ``HOST:PORT``), or one line saying what is wrong."""
    from distributed.comm.addressing import parse_address, parse_host_port
    try:
        scheme, loc = parse_address(str(address))
        host, port = parse_host_port(loc)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{what} {address!r}: not a scheduler address tcp://HOST:PORT ({e})") from None
    if scheme not in ("tcp", "tls") or not host or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} {address!r}: not a scheduler address tcp://HOST:PORT (port 1-65535)")
    return host, int(port)


def _scheduler_file_address(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such scheduler file (dask scheduler --scheduler-file writes it)")
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{p}: not a scheduler file ({str(e).splitlines()[0]})") from None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str):
        raise ConfigError(f"{p}: not a scheduler file (no 'address' string)")
    return info["address"]


def check_cluster(workers: int = 1, scheduler: str | None = None, scheduler_file: str | None = None,
                  gpus_per_run: int = 0) -> None:
    """The Dask options: workers >= 1, one well-formed and listening scheduler at most, GPUs that exist."""
    if workers is None or workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if gpus_per_run is None or gpus_per_run < 0:
        raise ConfigError(f"--gpus-per-run must be >= 0, got {gpus_per_run}")
    if scheduler is not None and scheduler_file is not None:
        raise ConfigError("give --scheduler or --scheduler-file, not both")
    if scheduler is None and scheduler_file is None:
        if gpus_per_run:
            _check_local_gpus(gpus_per_run)
        return
    what = "--scheduler" if scheduler is not None else f"--scheduler-file {scheduler_file}: address"
    address = scheduler if scheduler is not None else _scheduler_file_address(scheduler_file)
    host, port = scheduler_address(address, what)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        raise ConfigError(f"cannot reach the Dask scheduler at {address} ({e.strerror or e})") from None


def _check_local_gpus(gpus_per_run: int) -> None:
    import torch
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have < gpus_per_run:
        raise ConfigError(f"--gpus-per-run {gpus_per_run}: this machine has {have} GPU(s); the local cluster "
                          f"cannot give a run {gpus_per_run}")


def check_tune(trials: int = 1, seeds=(1111,), batch: int | None = None, workers: int = 1,
               confirm_seeds: int = 1) -> None:
    """tune's numbers: at least one trial, seed, batch slot and confirming seed; seeds distinct, >= 0."""
    for name, value in (("--trials", trials), ("--workers", workers), ("--confirm-seeds", confirm_seeds)):
        if value is None or value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if batch is not None and batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ConfigError(f"--seeds must be integers >= 0, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds: {next(s for s in seeds if seeds.count(s) > 1)} is given twice")


def check_storage(url: str, must_exist: bool = False, parent_made: bool = False) -> None:
    """An Optuna storage URL that opens cleanly; ``must_exist``: it already holds data (``--report``);
    ``parent_made``: a file's folder is created by the caller (the default storage inside ``--results``)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("--storage: empty URL")
    if url.startswith("journal:"):
        return _check_journal(Path(url[len("journal:"):]), must_exist, parent_made)
    if url.startswith("sqlite:///"):
        return _check_sqlite(Path(url[len("sqlite:///"):]), must_exist, parent_made)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    try:
        make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        raise ConfigError(f"--storage {url!r}: not an RDB URL nor journal:FILE ({str(e).splitlines()[0]})") from None
    except ImportError as e:
        raise ConfigError(f"--storage {url!r}: its database driver is not installed ({e})") from None


def _missing(path: Path, must_exist: bool, parent_made: bool) -> bool:
    if str(path) in ("", "."):
        raise ConfigError("--storage: no file name after the scheme")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: not a file (the tune storage)")
    if not path.exists():
        if must_exist:
            raise ConfigError(f"{path}: no study (run miar tune first, with this --storage)")
        if not parent_made and not path.parent.is_dir():
            raise ConfigError(f"{path.parent}: no such directory (for the tune storage)")
        return True
    return False


def _check_sqlite(path: Path, must_exist: bool, parent_made: bool) -> None:
    if _missing(path, must_exist, parent_made) or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        raise ConfigError(f"{path}: not a SQLite database (a tune study's storage)")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:  # locked by a live driver, or a hot journal a killed driver left that a
        return  # read-only connection cannot roll back: Optuna opens it and recovers, so it is not judged here
    except sqlite3.DatabaseError as e:  # malformed, truncated, not a database
        raise ConfigError(f"{path}: damaged SQLite database ({e})") from None
    if not ok or ok[0] != "ok":
        raise ConfigError(f"{path}: damaged SQLite database ({ok and ok[0]})")


def _check_journal(path: Path, must_exist: bool, parent_made: bool) -> None:
    if _missing(path, must_exist, parent_made):
        return
    lines = path.read_bytes().split(b"\n")
    for i, line in enumerate(lines[:-1], 1):  # the last piece: empty, or a write still under way
        try:
            ok = isinstance(json.loads(line), dict)
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"{path}: line {i} is not a JSON object (a damaged Optuna journal)")


__all__ = ["check_cluster", "check_results", "check_storage", "check_tune", "scheduler_address"]
