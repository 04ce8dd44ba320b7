"""Where a study run's time goes, and how fast the study's sweeps run: ``benchmarks/study_speed.py``.

:func:`breakdown` trains committed runs again in this process (their ``config.yaml``; the test metrics must equal
the record's on the same CPU) with a timer around each part of :func:`miar.train.fit`: data, model build, training
steps, validation, checkpoints, the test evaluation with its bootstrap, the record. It adds what the record cannot
see: a fresh interpreter's imports (paid once per worker: the sweep reuses one kernel per worker) and the notebook
around ``fit`` (papermill's duration minus the record's ``wall_time_s``), and a lower bound from FLOPs: the
training steps' FLOPs (:class:`torch.utils.flop_counter.FlopCounterMode`, forward and backward of one step, times
the steps run) at this machine's single-thread fp32 matmul peak.

:func:`sweep_speed` runs the same real runs as a sweep with 1 and with 2 workers and reads each run's notebook
duration (``metadata.papermill.duration``): the per-run median and the speed-up of 2 workers over 1.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch

PARTS = ("data", "model", "train_steps", "validation", "checkpoint", "test", "record")


@contextmanager
def _timed(totals: dict, owner, name: str, part: str, stack: list):
    """Wrap ``owner.name`` so that its calls add their wall time to ``totals[part]`` (``totals["calls:" + part]``
    counts them) unless an enclosing timed call is already counting; restore it after."""
    original = getattr(owner, name)

    def wrapper(*a, **kw):
        if stack:  # inside another timed part (the test split's predict inside _test): that part counts it
            return original(*a, **kw)
        stack.append(part)
        t = time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            totals[part] += time.perf_counter() - t
            totals[f"calls:{part}"] += 1
            stack.pop()

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def import_seconds() -> float:
    """A fresh interpreter importing what a run needs (``miar.train`` and the data loaders), wall seconds."""
    code = "import time; t = time.perf_counter(); import miar.train, miar.data; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return float(out.stdout.strip())


def step_flops(cfg, splits) -> float:
    """FLOPs of one training step (forward, loss, backward) on the first training batch of ``cfg``'s size."""
    from torch.utils.flop_counter import FlopCounterMode

    from miar.data import iterate
    from miar.train import Trainer, pick_device
    trainer = Trainer(cfg, splits["train"].dims, len(splits["train"]), pick_device("cpu"))
    batch = next(iter(iterate(splits["train"], cfg.data.batch_size, shuffle=False)))
    with FlopCounterMode(display=False) as counter:
        trainer.step(batch, update=False)
    return float(counter.get_total_flops())


def matmul_peak_1thread(n: int = 512, repeats: int = 9) -> float:
    """Best single-thread fp32 FLOP/s of an n x n matmul (the sweep's workers run one thread each)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        best = min(_wall(lambda: a @ b) for _ in range(repeats))
    finally:
        torch.set_num_threads(threads)
    return 2 * n ** 3 / best


def _wall(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def breakdown(run_dir: Path, scratch: Path, peak: float) -> dict:
    """Train the committed run ``run_dir`` again with a timer on each part of ``fit``; seconds per part."""
    from miar import config as C
    from miar import train
    from miar.data import build_splits
    cfg = C.load(str(run_dir / "config.yaml"))
    totals: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    splits = build_splits(cfg)
    totals["data"] = time.perf_counter() - t0
    out, stack = scratch / run_dir.parent.name / run_dir.name, []
    with _timed(totals, train.Trainer, "__init__", "model", stack), \
            _timed(totals, train.Trainer, "step", "train_steps", stack), \
            _timed(totals, train.Trainer, "predict", "validation", stack), \
            _timed(totals, train.Trainer, "checkpoint", "checkpoint", stack), \
            _timed(totals, train.Progress, "record", "checkpoint", stack), \
            _timed(totals, train, "_test", "test", stack), _timed(totals, train, "write_record", "record", stack):
        t1 = time.perf_counter()
        metrics = train.fit(cfg, out, splits=splits)
        fit_s = time.perf_counter() - t1
    recorded = json.loads((run_dir / "metrics.json").read_text())
    recorded_env = json.loads((run_dir / "env.json").read_text())
    steps = int(totals["calls:train_steps"])
    flops = step_flops(cfg, splits) * steps
    parts = {p: round(totals.get(p, 0.0), 3) for p in PARTS}
    parts["other"] = round(fit_s + totals["data"] - sum(parts.values()), 3)  # batching, epoch loop, metrics
    return {"run": f"{run_dir.parent.name}/{run_dir.name}", "model": cfg.model.name, "epochs": metrics["epochs_run"],
            "steps": steps, "fit_s": round(fit_s, 3), "recorded_fit_s": recorded_env.get("wall_time_s"),
            "recorded_cpu": recorded_env.get("device_name"), "parts_s": parts, "train_flops": flops,
            "flop_bound_s": round(flops / peak, 3), "test_mae": metrics["test"]["mae"],
            "recorded_test_mae": recorded["test"]["mae"], "same_test_metrics": metrics["test"] == recorded["test"]}


def notebook_overhead(results: Path, pattern: str) -> dict:
    """Per committed run: papermill's notebook duration and its part outside ``fit`` (duration - wall_time_s)."""
    durations, outside = [], []
    for nb in sorted(results.glob(f"notebooks/{pattern}.ipynb")):
        env = results / "runs" / nb.parent.name / nb.stem / "env.json"
        if not env.is_file():
            continue
        d = json.loads(nb.read_text())["metadata"]["papermill"].get("duration")
        if isinstance(d, (int, float)):
            durations.append(d)
            outside.append(d - json.loads(env.read_text())["wall_time_s"])
    if not durations:
        return {"runs": 0}
    return {"runs": len(durations), "notebook_s_median": round(statistics.median(durations), 3),
            "notebook_s_mean": round(statistics.mean(durations), 3),
            "outside_fit_s_median": round(statistics.median(outside), 3),
            "outside_fit_share": round(sum(outside) / sum(durations), 4)}


def sweep_speed(sweep: Path, scratch: Path, workers: tuple[int, ...] = (1, 2)) -> dict:
    """Run ``sweep`` with each worker count into its own results folder; wall time and per-run durations."""
    out = {}
    for w in workers:
        results = scratch / f"w{w}"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "miar.cli", "sweep", str(sweep), "--results", str(results),
                        "--workers", str(w)], check=True, timeout=3600, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        runs = notebook_overhead(results, "*/*")
        out[f"workers{w}"] = {"wall_s": round(wall, 1), **runs}
    if len(workers) == 2:
        a, b = (out[f"workers{w}"]["wall_s"] for w in workers)
        out["speedup"] = round(a / b, 3)
    return out


__all__ = ["PARTS", "breakdown", "import_seconds", "matmul_peak_1thread", "notebook_overhead", "step_flops",
           "sweep_speed"]
