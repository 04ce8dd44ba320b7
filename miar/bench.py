"""``miar bench``: speed and memory of MIAR and the baselines on synthetic tensors of the MOSI and
MOSEI shapes (aligned, 50 steps; unaligned, MMSA's lengths), batch 32 and 64, and (``--compare mmsa``)
our MulT against MMSA's MulT built with the same hyperparameters (:mod:`miar.bench_mmsa`).

Measured per model and shape: training throughput (samples/s from the median of repeated timed
steps after warm-up; a step is what ``train.train_epoch`` does: forward, loss with its named terms,
backward, gradient clipping, AdamW), inference latency (median forward of one batch, eval mode),
FLOPs per training sample (``FlopCounterMode`` over one forward+backward) and the fraction of the
machine's matmul peak measured in the same run (fp32 on CPU, bf16 on GPU; the best of repeats).
Epoch scaling: one MIAR epoch (aligned, batch 64, MOSEI dims, ``train.train_epoch`` itself) at MOSI
size, MOSEI size and 4x MOSEI (four passes over the MOSEI-size pool, not materialised), with peak
RSS (CPU: VmHWM, reset per size) or ``torch.cuda.max_memory_allocated``. CPU runs use all cores;
GPU runs bf16 autocast. The machine is shared: timings are medians, the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from miar import config as C
from miar.data import batch_indices
from miar.data.synthetic import PRESETS, make_synthetic
from miar.records import atomic_write, cpu_model
from miar.train import _losses, _setup, train_epoch

MODELS = ("miar", "text_only", "early_fusion", "late_fusion", "bclstm", "mult", "misa")
MOSEI_TRAIN = PRESETS["mosei"]["sizes"][0]
SECTIONS = ("models", "epoch")  # the default sections; --compare mmsa adds the MMSA comparison


@dataclass(frozen=True)
class Settings:
    quick: bool = False
    device: str = "cpu"
    shapes: tuple[tuple[str, bool], ...] = (("mosi", True), ("mosi", False), ("mosei", True), ("mosei", False))
    batches: tuple[int, ...] = (32, 64)
    pool: int = 256  # samples per shape; batches are random draws from it
    warmup: int = 2
    repeats: int = 7  # timed steps (fewer when a measurement passes budget_s, never below 3)
    budget_s: float = 30.0
    peak_n: int = 2048  # matmul size for the peak
    quick_dims: dict | None = None  # quick mode: small dims and lengths per preset
    model: dict | None = None  # config deltas for every model (quick mode: a tiny width)
    epoch_sizes: tuple[tuple[str, int, int], ...] = (("mosi", 1284, 1), ("mosei", MOSEI_TRAIN, 1),
                                                     ("4x_mosei", MOSEI_TRAIN, 4))


def settings(quick: bool, device: str) -> Settings:
    if not quick:
        return Settings(device=device)
    dims = {"mosi": ((24, 5, 20), 6, (6, 9, 12)), "mosei": ((24, 7, 9), 6, (6, 10, 10))}
    return Settings(quick=True, device=device, shapes=(("mosi", True), ("mosei", False)), batches=(8,),
                    pool=16, warmup=1, repeats=2, budget_s=2,
                    peak_n=256, quick_dims=dims, epoch_sizes=(("mosi", 32, 1), ("mosei", 64, 1),
                                                              ("4x_mosei", 64, 4)),
                    model={"d_model": 16, "n_heads": 2, "head_hidden": 16, "proj_dim": 8})


# ----------------------------------------------------------------------------- machine and timing

def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def machine(device: str) -> dict:
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "device": device,
            "device_name": torch.cuda.get_device_name(0) if device == "cuda" else cpu_model(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (active)"),
            "load_average_start": list(os.getloadavg())}


def interleaved(fns: dict, next_idx, s: Settings) -> dict[str, list[float]]:
    """Seconds per call of each ``fns[k](idx)``, alternating their order each round (fair under
    changing load); ``s.warmup`` rounds untimed, then up to ``s.repeats`` (>= 3 past the budget)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    start, r, warmup = time.perf_counter(), 0, s.warmup
    while True:
        if 1 <= r < warmup and time.perf_counter() - start > s.budget_s / 6:
            warmup = r  # slow steps: one warm-up round is enough
        idx = next_idx()
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t0 = time.perf_counter()
            fns[k](idx)
            sync(s.device)
            if r >= warmup:
                times[k].append(time.perf_counter() - t0)
        r += 1
        n = r - warmup
        if n >= s.repeats or (n >= min(3, s.repeats) and time.perf_counter() - start > s.budget_s):
            return times


def matmul_peak(s: Settings) -> dict:
    """Best and median FLOP/s of an n x n matmul: fp32 on CPU, bf16 on GPU."""
    n = s.peak_n if s.device == "cpu" else 8192
    dt = torch.float32 if s.device == "cpu" else torch.bfloat16
    a, b = (torch.randn(n, n, device=s.device, dtype=dt) for _ in range(2))
    t = interleaved({"mm": lambda _: a @ b}, lambda: None, Settings(device=s.device, warmup=2, repeats=9))
    flops = 2 * n ** 3
    return {"n": n, "dtype": str(dt), "flops_best": flops / min(t["mm"]),
            "flops_median": flops / statistics.median(t["mm"])}


def reset_peak_memory(device: str) -> None:
    """Start a new peak: CUDA's counter, or (Linux) the peak RSS after freed heap is returned."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        import ctypes  # noqa: PLC0415
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed memory resident otherwise
    except (OSError, AttributeError):
        pass
    try:  # writing 5 to clear_refs resets VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # noqa: PLC0415 (fallback: the process-lifetime peak)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- data and steps

def make_pool(preset: str, aligned: bool, n: int, s: Settings):
    """A train split of ``n`` synthetic samples with the preset's dims and lengths."""
    kw = {}
    if s.quick_dims:
        dims, seq_len, lens = s.quick_dims[preset]
        kw = {"dims": dims, "seq_len": seq_len, "unaligned_lens": lens}
    return make_synthetic(preset, n_train=n, n_valid=0, n_test=0, aligned=aligned, **kw)["train"]


def model_cfg(name: str, batch: int, s: Settings) -> C.Config:
    return C.merge(C.Config(), {"model": {"name": name, **(s.model or {})}, "data": {"batch_size": batch},
                                "train": {"device": s.device, "amp": "bf16" if s.device == "cuda" else "none"}})


def train_step(cfg, model, temp, opt, ds, s: Settings, with_update: bool = True):
    """One step of ``train.train_epoch`` on the rows ``idx`` of ``ds``."""
    amp = s.device == "cuda"

    def step(idx):
        batch = ds.batch(idx).to(s.device)
        with torch.autocast(s.device, dtype=torch.bfloat16, enabled=amp):
            out = model(batch)
        loss, _ = _losses(cfg, out, batch.y, temp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if with_update:
            if cfg.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            opt.step()
    return step


def infer_step(model, ds, s: Settings):
    @torch.no_grad()
    def step(idx):
        with torch.autocast(s.device, dtype=torch.bfloat16, enabled=s.device == "cuda"):
            model(ds.batch(idx).to(s.device)).pred.float().cpu()
    return step


def count_flops(step, idx) -> int:
    with FlopCounterMode(display=False) as fc:
        step(idx)
    return fc.get_total_flops()


def sampler(ds, batch: int, seed: int = 0):
    """Index batches as the trainer forms them (shuffled, length-bucketed: ``batch_indices``),
    one pass after another; each call returns the next (B,) index tensor."""
    gen, queue = torch.Generator().manual_seed(seed), []

    def next_batch():
        if not queue:
            queue.extend(batch_indices(ds, batch, shuffle=True, generator=gen, drop_last=True, bucket=True))
        return queue.pop(0)
    return next_batch


# ----------------------------------------------------------------------------- sections

def bench_models(s: Settings, peak: float, log) -> list[dict]:
    rows = []
    for preset, aligned in s.shapes:
        ds = make_pool(preset, aligned, s.pool, s)
        for b in s.batches:
            for name in MODELS:
                cfg = model_cfg(name, b, s)
                model, temp, opt, _ = _setup(cfg, ds, torch.device(s.device))  # as train.fit
                model.train()
                flops = count_flops(train_step(cfg, model, temp, opt, ds, s, with_update=False),
                                    sampler(ds, b, 1)())
                t = interleaved({"train": train_step(cfg, model, temp, opt, ds, s)}, sampler(ds, b), s)
                model.eval()
                i = interleaved({"infer": infer_step(model, ds, s)}, sampler(ds, b, 2), s)
                step_s, inf_s = statistics.median(t["train"]), statistics.median(i["infer"])
                rows.append({"model": name, "preset": preset, "aligned": aligned, "batch": b,
                             "params": sum(p.numel() for p in model.parameters()),
                             "train_step_ms": 1e3 * step_s, "train_samples_per_s": b / step_s,
                             "train_step_ms_all": [round(1e3 * x, 2) for x in t["train"]],
                             "infer_batch_ms": 1e3 * inf_s, "infer_samples_per_s": b / inf_s,
                             "flops_per_train_sample": flops / b,
                             "fraction_of_peak": flops / step_s / peak})
                log(f"  {preset:5s} {'aligned' if aligned else 'unalign':7s} B={b:<3d} {name:12s} "
                    f"{b / step_s:9.1f} samples/s  infer {1e3 * inf_s:8.1f} ms")
    return rows


def epoch_scaling(s: Settings, log) -> list[dict]:
    """One MIAR epoch (aligned, batch 64, MOSEI dims) per dataset size, via ``train.train_epoch``."""
    rows, ds, b = [], None, max(s.batches) if s.quick else 64
    for label, n, passes in s.epoch_sizes:
        fresh = ds is None or len(ds) != n
        ds = None if fresh else ds  # free the previous pool before the peak is reset
        reset_peak_memory(s.device)
        base, t0 = peak_memory_mb(s.device), time.perf_counter()
        ds = make_pool("mosei", True, n, s) if fresh else ds
        data_s = time.perf_counter() - t0
        cfg = model_cfg("miar", b, s)
        model, temp, opt, sched = _setup(cfg, ds, torch.device(s.device))  # as train.fit
        warm = train_step(cfg, model, temp, opt, ds, s)
        for _ in range(s.warmup):
            warm(sampler(ds, b)())
        gen, t0 = torch.Generator().manual_seed(0), time.perf_counter()
        for _ in range(passes):
            train_epoch(cfg, model, temp, opt, sched, ds, gen, torch.device(s.device), s.device == "cuda")
        sync(s.device)
        dt = time.perf_counter() - t0
        nbytes = sum(v.numel() * v.element_size() for v in [*ds.x.values(), *ds.mask.values()])
        rows.append({"size": label, "n_samples": n * passes, "steps": passes * math.ceil(n / b),
                     "batch": b, "epoch_s": dt, "cycled_passes": passes, "peak_memory_mb": peak_memory_mb(s.device),
                     "memory_before_mb": base, "data_s": data_s, "dataset_mb": nbytes / 2**20,
                     "dataset_mb_if_materialised": passes * nbytes / 2**20})
        log(f"  {label:9s} N={n * passes:6d} {dt:8.1f} s/epoch  peak {rows[-1]['peak_memory_mb']:8.0f} MB")
    return rows


def study_wall_time(results: Path = Path("results")) -> dict | str:
    """The study's wall time: the newest ``study`` sweep record that ran every run from scratch
    (``results/sweeps/``), beside the sum of the per-run wall times of the records (``env.json``)."""
    from miar.report.perf import study_wall  # noqa: PLC0415

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
        from miar.bench_mmsa import compare as compare_mmsa  # noqa: PLC0415 (optional dependency)
        log("our MulT vs MMSA's MulT:")
        report["mmsa"] = compare_mmsa(s, log)
    sp = report.get("mmsa", {}).get("speedup_geomean")
    report["mult_train_speedup_vs_mmsa"] = sp
    log("epoch scaling (MIAR, aligned):" if "epoch" in sections else "epoch scaling: skipped")
    report["epoch_scaling"] = epoch_scaling(s, log) if "epoch" in sections else []
    report["miar_mosei_epoch_s"] = next((r["epoch_s"] for r in report["epoch_scaling"] if r["size"] == "mosei"),
                                        None)
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
        from miar.bench_mmsa import table_lines  # noqa: PLC0415
        out += table_lines(report["mmsa"])
    out.append(f"\n{'epoch size':10s} {'N':>7s} {'steps':>6s} {'epoch s':>9s} {'peak MB':>9s} {'data MB':>9s}")
    for r in report["epoch_scaling"]:
        out.append(f"{r['size']:10s} {r['n_samples']:7d} {r['steps']:6d} {r['epoch_s']:9.1f} "
                   f"{r['peak_memory_mb']:9.0f} {r['dataset_mb']:9.0f}")
    sp = report["mult_train_speedup_vs_mmsa"]
    out.append(f"\nmult_train_speedup_vs_mmsa: {'n/a' if sp is None else f'{sp:.2f}x (geometric mean)'}  "
               f"(target >= 1.5x)")
    ep = report["miar_mosei_epoch_s"]
    out.append(f"miar_mosei_epoch_s: {'n/a' if ep is None else f'{ep:.1f} s'} (target <= 30 s on 2 cores)")
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
    p = argparse.ArgumentParser(prog="miar bench", description=__doc__.splitlines()[0])
    p.add_argument("--compare", action="append", default=[], choices=["mmsa"],
                   help="also time MMSA's MulT against ours (needs the bench extra)")
    p.add_argument("--json", default=None, metavar="FILE", help="write every measurement to FILE")
    p.add_argument("--quick", action="store_true", help="tiny shapes, a smoke run in seconds")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--omp-wait", default="auto", choices=["auto", "passive", "active"],
                   help="OpenMP wait policy (active: threads spin between parallel regions, fastest on an "
                        "idle machine; passive: they sleep, much faster on a loaded one; auto: active when "
                        "the 1-minute load average is below half the cores)")
    p.add_argument("--results", default="results", help="where the study's run records are")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help="comma-separated subset of: " + ", ".join(SECTIONS))
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    args = p.parse_args(argv)
    if not set(args.sections.split(",")) <= set(SECTIONS):
        p.error(f"--sections: choose from {', '.join(SECTIONS)}")
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
