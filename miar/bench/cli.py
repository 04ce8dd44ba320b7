"""``miar bench``'s driver: the sections of :mod:`miar.bench.core` (and :mod:`miar.bench.mmsa` with
``--compare mmsa``), the text tables, the JSON file, and the OpenMP wait policy (a re-exec when it must change).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from miar.bench import mmsa
from miar.bench.core import bench_models, epoch_scaling, machine, matmul_peak, settings
from miar.records import atomic_write

DESCRIPTION = "speed and memory of MIAR and the baselines on synthetic MOSI and MOSEI shapes"
SECTIONS = ("models", "epoch")  # the default sections; --compare mmsa adds the MMSA comparison
OPTIONAL_SECTIONS = ("finetune",)  # only when named: --sections finetune (MiniLM fine-tuning, miar.bench.finetune)


def study_wall_time(results: Path = Path("results")) -> dict | str:
    """The study's wall time: the newest ``study`` sweep record that ran every run from scratch
    (``results/sweeps/``), beside the sum of the per-run wall times of the records (``env.json``)."""
    from miar.sweep_records import study_wall  # lazy: reading the records pulls in pandas

    envs = sorted(results.glob("runs/*/*/env.json"))
    walls = [json.loads(p.read_text()).get("wall_time_s") for p in envs]
    walls = [w for w in walls if isinstance(w, (int, float))]
    rec = study_wall(results)
    if not walls and rec is None:
        return "not yet run"
    out = {"runs": len(walls), "sum_of_run_wall_times_s": sum(walls)}
    if rec is not None:
        out.update(sweep_wall_s=float(rec["wall_s"]), sweep_workers=int(rec["workers"]),
                   sweep_runs=int(rec["runs_in_sweep"]), sweep_started_utc=rec["started_utc"],
                   sweep_commit=rec.get("commit"))
    return out


# ----------------------------------------------------------------------------- driver

def run(quick: bool = False, device: str = "auto", compare: tuple[str, ...] = (), log=print,
        results: Path = Path("results"), threads: int = 0, sections: tuple[str, ...] = SECTIONS) -> dict:
    """Every measurement as one JSON-ready dict (see the module docstring); threads 0 = all cores."""
    device = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    torch.set_num_threads(threads or os.cpu_count() or 1)
    s = settings(quick, device)
    report = {"machine": machine(device), "settings": asdict(s)}
    report["matmul_peak"] = peak = matmul_peak(s)
    log(f"matmul peak: {peak['flops_best'] / 1e9:.1f} GFLOP/s ({peak['dtype']}, n={peak['n']})")
    log("models:")
    report["models"] = bench_models(s, peak["flops_best"], log) if "models" in sections else []
    if "mmsa" in compare:
        log("our MulT vs MMSA's MulT:")
        report["mmsa"] = mmsa.compare(s, log)
    sp = report.get("mmsa", {}).get("speedup_geomean")
    report["mult_train_speedup_vs_mmsa"] = sp
    log("epoch scaling (MIAR, aligned):" if "epoch" in sections else "epoch scaling: skipped")
    report["epoch_scaling"] = epoch_scaling(s, log) if "epoch" in sections else []
    report["miar_mosei_epoch_s"] = next((r["epoch_s"] for r in report["epoch_scaling"] if r["size"] == "mosei"),
                                        None)
    if "finetune" in sections:
        from miar.bench import finetune  # lazy: loads the text backbone

        log("fine-tuning (MiniLM top:2 vs naive full):")
        report.update(finetune.bench(quick, device, log))
    report["study_wall_time"] = study_wall_time(Path(results))
    report["machine"]["load_average_end"] = list(os.getloadavg())
    return report


def table(report: dict) -> str:
    """The figures and ratios as plain-text tables."""
    m, out = report["machine"], []
    out.append(f"{m['cpu_model']}, {m['cores']} cores, {m['torch_threads']} threads, torch {m['torch']}, "
               f"{m['device']} ({m['device_name']}); load {m['load_average_start']} -> "
               f"{m.get('load_average_end')}; matmul peak {report['matmul_peak']['flops_best'] / 1e9:.1f} GFLOP/s")
    out.append(f"\n{'shape':15s} {'B':>3s} {'model':12s} {'train/s':>9s} {'step ms':>9s} {'infer ms':>9s} "
               f"{'GFLOP/smp':>9s} {'%peak':>6s}")
    for r in report["models"]:
        shape = f"{r['preset']} {'aligned' if r['aligned'] else 'unaligned'}"
        out.append(f"{shape:15s} {r['batch']:3d} {r['model']:12s} {r['train_samples_per_s']:9.1f} "
                   f"{r['train_step_ms']:9.1f} {r['infer_batch_ms']:9.1f} "
                   f"{r['flops_per_train_sample'] / 1e9:9.3f} {100 * r['fraction_of_peak']:6.1f}")
    if "mmsa" in report:
        out += mmsa.table_lines(report["mmsa"])
    out.append(f"\n{'epoch size':10s} {'N':>7s} {'steps':>6s} {'epoch s':>9s} {'peak MB':>9s} {'data MB':>9s}")
    for r in report["epoch_scaling"]:
        out.append(f"{r['size']:10s} {r['n_samples']:7d} {r['steps']:6d} {r['epoch_s']:9.1f} "
                   f"{r['peak_memory_mb']:9.0f} {r['dataset_mb']:9.0f}")
    sp = report["mult_train_speedup_vs_mmsa"]
    out.append(f"\nmult_train_speedup_vs_mmsa: {'n/a' if sp is None else f'{sp:.2f}x (geometric mean)'}  "
               f"(target >= 1.5x)")
    ep = report["miar_mosei_epoch_s"]
    out.append(f"miar_mosei_epoch_s: {'n/a' if ep is None else f'{ep:.1f} s'} (target <= 30 s on 2 cores)")
    if "finetune" in report:
        from miar.bench.finetune import table_lines

        out += table_lines(report)
    out.append(f"study wall time: {report['study_wall_time']}")
    return "\n".join(out)


def omp_policy(choice: str) -> str:
    """``choice`` unless "auto": then "active" on an idle machine (load < half the cores), else "passive"."""
    if choice != "auto":
        return choice
    if os.environ.get("OMP_WAIT_POLICY", "").lower() in ("active", "passive"):
        return os.environ["OMP_WAIT_POLICY"].lower()  # already chosen for this process: keep it
    return "active" if os.getloadavg()[0] < 0.5 * (os.cpu_count() or 1) else "passive"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="miar bench", description=DESCRIPTION)
    p.add_argument("--compare", action="append", default=[], choices=["mmsa"],
                   help="also time MMSA's MulT against ours (needs the bench extra)")
    p.add_argument("--json", default=None, metavar="FILE", help="write every measurement to FILE")
    p.add_argument("--quick", action="store_true", help="tiny shapes, a smoke run in seconds")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to run (auto: CUDA when available)")
    p.add_argument("--omp-wait", default="auto", choices=["auto", "passive", "active"],
                   help="OpenMP wait policy (active: threads spin between parallel regions, fastest on an "
                        "idle machine; passive: they sleep, much faster on a loaded one; auto: active when "
                        "the 1-minute load average is below half the cores)")
    p.add_argument("--results", default="results", help="where the study's run records are")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help="comma-separated subset of: " + ", ".join(SECTIONS + OPTIONAL_SECTIONS)
                        + " (finetune runs only when named: --sections finetune times it alone)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    args = p.parse_args(argv)
    if not set(args.sections.split(",")) <= set(SECTIONS + OPTIONAL_SECTIONS):
        p.error(f"--sections: choose from {', '.join(SECTIONS + OPTIONAL_SECTIONS)}")
    policy = omp_policy(args.omp_wait).upper()
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != policy and "MIAR_BENCH_CHILD" not in os.environ:
        # the OpenMP runtime reads its wait policy once, when torch is loaded: run in a fresh process
        env = {**os.environ, "OMP_WAIT_POLICY": policy, "MIAR_BENCH_CHILD": "1"}
        return subprocess.call([sys.executable, "-m", "miar.bench", *argv], env=env)
    report = run(quick=args.quick, device=args.device, compare=tuple(args.compare),
                 log=lambda msg: print(msg, file=sys.stderr, flush=True), results=Path(args.results),
                 threads=args.threads, sections=tuple(args.sections.split(",")))
    print(table(report))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(report, indent=2) + "\n")  # a failed run leaves the old file
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
