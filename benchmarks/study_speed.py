"""The study's speed on this machine -> ``results/bench/study_speed.json`` (the performance chapter reads it).

    MIAR_DATA=... python benchmarks/study_speed.py            # everything (about 15 min on 2 cores)
    python benchmarks/study_speed.py --skip-sweep --skip-finetune  # the breakdown only

What it measures (:mod:`miar.bench.study`):

- ``breakdown``: the seed-1111 run of each primary experiment trained again here, its wall time split into parts
  (data, model build, training steps, validation, checkpoints, test with bootstrap, record, other), its steps' FLOPs
  at this machine's single-thread matmul peak, and whether its test metrics equal the committed record's (they do
  on the CPU model that recorded it; across CPU models float rounding differs);
- ``imports_s``: a fresh interpreter's imports (once per worker; the sweep reuses one kernel per worker);
- ``notebook``: from the committed primary notebooks, papermill's duration and the part of it outside ``fit``;
- ``sweep``: the first 20 runs of the primary sweep (seed-major: every experiment's seed 1111, then six at 1112) run
  as a sweep with 1 and with 2 workers: ``frozen_run_s_median`` (notebook duration, 2 workers) and
  ``workers2_speedup`` (wall with 1 worker / wall with 2);
- ``finetune``: one epoch of the fine-tuned MiniLM MIAR run (top two layers) measured here, beside the committed
  fine-tuned runs' epoch and run times;
- ``study_wall_s``: the study's wall time from its sweep and tuning records (:mod:`miar.report.study_time`);
- ``book_noop_s``: passed in (``--book-noop-s``), measured as ``time make book`` after a first build
  (``--only-book-noop --book-noop-s S`` sets it in the existing file without measuring anything else).

Targets (issue "Speed"): frozen run <= 4 s median, fine-tuned epoch <= 7 s, fine-tuned run <= 100 s, 2 workers
>= 1.7x, the study <= 4 h, make book with nothing new < 90 s. The JSON says which are met.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"frozen_run_s_median": 4.0, "finetune_epoch_s": 7.0, "finetune_run_s_median": 100.0,
           "workers2_speedup": 1.7, "study_wall_s": 4 * 3600.0, "book_noop_s": 90.0}
HIGHER_IS_BETTER = {"workers2_speedup"}


def primary_runs(results: Path, seed: int = 1111) -> list[Path]:
    sweep = yaml.safe_load((REPO / "miar/experiments/sweeps/primary.yaml").read_text())
    return [results / "runs" / f"{e['experiment']}+{e['variant']}" / f"s{seed}" for e in sweep["runs"]]


def first_20_sweep(path: Path) -> Path:
    """The primary sweep's first 20 runs in seed-major order, as a sweep file (tuned from results/tune)."""
    sweep = yaml.safe_load((REPO / "miar/experiments/sweeps/primary.yaml").read_text())
    runs = [dict(e, seeds=[1111]) for e in sweep["runs"]] + [dict(e, seeds=[1112]) for e in sweep["runs"][:6]]
    for r in runs:  # the runs time training, not weight files
        r["overrides"] = [o for o in r.get("overrides", []) if o != "train.save_model=true"]
    path.write_text(yaml.safe_dump({"notebook": "train.ipynb", "tuned_dir": str(REPO / "results/tune"),
                                    "description": "the first 20 runs of the primary sweep (speed benchmark)",
                                    "runs": runs}, sort_keys=False))
    return path


def finetune(results: Path, scratch: Path) -> dict:
    """One epoch of the fine-tuned MIAR run measured here; the committed fine-tuned runs' epoch and run times."""
    import csv

    from miar import config as C
    from miar.bench.study import notebook_overhead
    from miar.train import fit
    run = results / "runs" / "mosi_std_miar+tuned.ft_minilm" / "s1111"
    cfg = C.load(str(run / "config.yaml"), overrides=["train.epochs=1", "train.save_model=false"])
    t = time.perf_counter()
    fit(cfg, scratch / "ft")
    wall = time.perf_counter() - t
    (row,) = list(csv.DictReader((scratch / "ft" / "history.csv").open()))
    epochs = [float(r["seconds"]) for h in results.glob("runs/*+tuned.ft_minilm/s*/history.csv")
              for r in csv.DictReader(h.open())]
    return {"epoch_s": float(row["seconds"]), "one_epoch_run_s": round(wall, 1),
            "recorded_epoch_s_median": round(statistics.median(epochs), 3) if epochs else None,
            "recorded": notebook_overhead(results, "*+tuned.ft_minilm/*")}


def targets(out: dict) -> dict:
    met = {}
    for key, bound in TARGETS.items():
        v = out.get(key)
        met[key] = None if v is None else (v >= bound if key in HIGHER_IS_BETTER else v <= bound)
    return {"bounds": TARGETS, "met": met}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(REPO / "results"))
    ap.add_argument("--json", default=str(REPO / "results/bench/study_speed.json"))
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--skip-finetune", action="store_true")
    ap.add_argument("--book-noop-s", type=float, default=None, help="measured `time make book` with nothing new")
    ap.add_argument("--only-book-noop", action="store_true",
                    help="set book_noop_s (and the targets) in the existing JSON, measure nothing else")
    args = ap.parse_args(argv)
    if args.only_book_noop:
        out = json.loads(Path(args.json).read_text())
        out["book_noop_s"] = args.book_noop_s
        out["targets"] = targets(out)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        return 0
    import torch

    from miar.bench.core import machine
    from miar.bench.study import breakdown, import_seconds, matmul_peak_1thread, notebook_overhead, sweep_speed
    from miar.report.study_time import study_time_table
    results = Path(args.results)
    torch.set_num_threads(1)
    out: dict = {"machine": machine("cpu"), "threads_per_run": 1}
    out["matmul_peak_1thread_flops"] = peak = matmul_peak_1thread()
    out["imports_s"] = round(import_seconds(), 2)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        out["breakdown"] = []
        for run in primary_runs(results):
            b = breakdown(run, scratch / "b", peak)
            print(f"{b['run']}: fit {b['fit_s']:.1f} s, FLOP bound {b['flop_bound_s']:.2f} s, {b['parts_s']}",
                  file=sys.stderr)
            out["breakdown"].append(b)
        out["notebook"] = notebook_overhead(results, "mosi_*+tuned/*")
        if not args.skip_finetune:
            out["finetune"] = ft = finetune(results, scratch)
            out["finetune_epoch_s"] = ft["epoch_s"]
            out["finetune_run_s_median"] = ft["recorded"].get("notebook_s_median")
        if not args.skip_sweep:
            out["sweep"] = sw = sweep_speed(first_20_sweep(scratch / "first20.yaml"), scratch / "sweeps")
            out["frozen_run_s_median"] = sw["workers2"]["notebook_s_median"]
            out["workers2_speedup"] = sw["speedup"]
    table = study_time_table(results)
    out["study_wall_s"] = round(60 * float(table["Wall (min)"].iloc[-1]), 1)  # the table's last row: the total
    out["book_noop_s"] = args.book_noop_s
    out["targets"] = targets(out)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out.get(k) for k in TARGETS} | {"met": out["targets"]["met"]}, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
