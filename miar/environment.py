"""Where a run ran: the repository commit, package versions, the CPU or GPU, threads and wall time
(``env.json`` of a run record, :mod:`miar.records`; also the sweep and benchmark records)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


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


__all__ = ["cpu_model", "environment", "git_commit", "simd_level"]
