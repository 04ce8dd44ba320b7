"""Run records: the files a run leaves behind, written atomically so a crash never leaves a
half-written file that looks complete. ``metrics.json`` is written last and marks completion.

Layout of a run directory::

    config.yaml       the resolved config (``miar train run_dir/config.yaml`` reruns the run)
    history.csv       one row per epoch: losses by name, validation metrics, seconds
    predictions.csv   test ids, predictions, labels
    env.json          git commit, package versions, device, threads, wall time
    metrics.json      valid and test metric dicts, bootstrap CIs, best epoch, criterion
    model.pt          (only with train.save_model) the selected weights, a state dict
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from miar.errors import UserError

RECORD_FILES = ("config.yaml", "history.csv", "predictions.csv", "env.json", "metrics.json")
CHECKPOINT = "checkpoint.pt"  # per-epoch training state while a run is in progress
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


def is_complete(run_dir: Path) -> bool:
    """True when every record file exists and ``metrics.json`` parses with a test section."""
    run_dir = Path(run_dir)
    if not all((run_dir / f).is_file() for f in RECORD_FILES):
        return False
    try:
        return "test" in json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return False


def git_commit() -> dict:
    """The repository's commit and whether the working tree had changes (None outside git)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        head, dirty = None, None
    return {"commit": head, "dirty": dirty}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows. CPU results are
    bitwise reproducible on the same CPU model; another one may differ in the last digits."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    names = [ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def simd_level() -> str:
    """The SIMD level the CPU kernels dispatch to: torch's ("AVX2", "AVX512", ...) and numpy's highest
    dispatched target, e.g. "torch AVX512, numpy AVX512_ICL". Two CPUs with one model name (``/proc/cpuinfo``
    says "AMD EPYC" for several generations) can differ here, and then so can the last bits of a float32 result."""
    import torch

    out = [f"torch {torch.backends.cpu.get_cpu_capability()}"]
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        levels = [k for k in __cpu_dispatch__ if __cpu_features__.get(k)]
        out.append(f"numpy {levels[-1] if levels else 'baseline'}")
    except ImportError:  # numpy < 2 names the module differently; the torch level is what matters most
        pass
    return ", ".join(out)


def environment(device: str, threads: int, wall_time_s: float) -> dict:
    import numpy
    import torch

    from miar import __version__
    dev_name = torch.cuda.get_device_name(0) if device.startswith("cuda") else cpu_model()
    return {
        **git_commit(),
        "miar": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "numpy": numpy.__version__, "platform": platform.platform(),
        "device": device, "device_name": dev_name or platform.machine(),
        "cpu_simd": simd_level(), "cpu_count": os.cpu_count(), "torch_threads": threads,
        "wall_time_s": round(wall_time_s, 3),
    }


def write_record(run_dir: Path, *, config_yaml: str, history: list[dict], predictions: list[dict],
                 env: dict, metrics: dict) -> None:
    """Write every record file atomically; ``metrics.json`` last."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / "config.yaml", config_yaml)
    atomic_write(run_dir / "history.csv", csv_text(history))
    atomic_write(run_dir / "predictions.csv", csv_text(predictions))
    atomic_write(run_dir / "env.json", json.dumps(env, indent=2) + "\n")
    atomic_write(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
