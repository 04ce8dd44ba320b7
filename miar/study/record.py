"""The sweep record: ``results/sweeps/<name>-<start>.json``, one invocation's wall time (a new file each time)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from miar.records import atomic_write, cpu_model, git_commit

KERNELS_FRESH, KERNELS_REUSED = "fresh per run", "one per worker, reset between runs"  # sweep records' "kernels"


def write_sweep_record(results: Path, name: str, started: str, wall_s: float, workers: int, threads: int,
                       n_runs: int, n_executed: int, failures: list, fresh_kernels: bool = False) -> Path:
    """Write the record; ``complete_from_scratch`` is true when this invocation ran every run of the
    sweep and none failed: then ``wall_s`` is the time the whole sweep takes on this machine."""
    record = {"sweep": name, "started_utc": started, "wall_s": round(wall_s, 1), "workers": workers,
              "omp_threads_per_worker": threads,
              "kernels": KERNELS_FRESH if fresh_kernels else KERNELS_REUSED,
              "runs_in_sweep": n_runs, "runs_executed": n_executed, "runs_failed": len(failures),
              "complete_from_scratch": n_executed == n_runs and not failures,
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "cpu_model": cpu_model(),
              "load_average_end": [round(x, 2) for x in os.getloadavg()], **git_commit()}
    path = results / "sweeps" / f"{Path(name).stem}-{started.replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(record, indent=1) + "\n")
    return path
