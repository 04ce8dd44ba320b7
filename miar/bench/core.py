"""``miar bench``: speed and memory of MIAR and the baselines on synthetic tensors of the MOSI and
MOSEI shapes (aligned, 50 steps; unaligned, MMSA's lengths), batch 32 and 64, and (``--compare mmsa``)
our MulT against MMSA's MulT built with the same hyperparameters (:mod:`miar.bench.mmsa`).

Measured per model and shape: training throughput (samples/s from the median of repeated timed
steps after warm-up; a step is the trainer's own ``Trainer.step``: forward, loss with its named terms,
backward, gradient clipping, AdamW), inference latency (median forward of one batch, eval mode),
FLOPs per training sample (``FlopCounterMode`` over one forward+backward) and the fraction of the
machine's matmul peak measured in the same run (fp32 on CPU, bf16 on GPU; the best of repeats).
Epoch scaling: one MIAR epoch (aligned, batch 64, MOSEI dims, ``Trainer.epoch`` itself) at MOSI
size, MOSEI size and 4x MOSEI (four passes over the MOSEI-size pool, not materialised), with peak
RSS (CPU: VmHWM, reset per size) or ``torch.cuda.max_memory_allocated``. CPU runs use all cores;
GPU runs bf16 autocast. The machine is shared: timings are medians, the load average is recorded.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from miar import config as C
from miar.data import batch_indices
from miar.data.synthetic import PRESETS, make_synthetic
from miar.records import cpu_model
from miar.train import Trainer

MODELS = ("miar", "text_only", "early_fusion", "late_fusion", "bclstm", "mult", "misa")
MOSEI_TRAIN = PRESETS["mosei"]["sizes"][0]


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


def train_step(trainer: Trainer, ds, update: bool = True):
    """The trainer's own training step (``Trainer.step``) on the rows ``idx`` of ``ds``."""
    def step(idx):
        trainer.step(ds.batch(idx), update=update)
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
                trainer = Trainer(cfg, ds.dims, len(ds), torch.device(s.device))  # as train.fit
                model = trainer.model.train()
                flops = count_flops(train_step(trainer, ds, update=False), sampler(ds, b, 1)())
                t = interleaved({"train": train_step(trainer, ds)}, sampler(ds, b), s)
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
    """One MIAR epoch (aligned, batch 64, MOSEI dims) per dataset size, via ``Trainer.epoch``."""
    rows, ds, b = [], None, max(s.batches) if s.quick else 64
    for label, n, passes in s.epoch_sizes:
        fresh = ds is None or len(ds) != n
        ds = None if fresh else ds  # free the previous pool before the peak is reset
        reset_peak_memory(s.device)
        base, t0 = peak_memory_mb(s.device), time.perf_counter()
        ds = make_pool("mosei", True, n, s) if fresh else ds
        data_s = time.perf_counter() - t0
        cfg = model_cfg("miar", b, s)
        trainer = Trainer(cfg, ds.dims, len(ds), torch.device(s.device))  # as train.fit
        warm = train_step(trainer, ds)
        for _ in range(s.warmup):
            warm(sampler(ds, b)())
        t0 = time.perf_counter()
        for _ in range(passes):
            trainer.epoch(ds)
        sync(s.device)
        dt = time.perf_counter() - t0
        nbytes = sum(v.numel() * v.element_size() for v in [*ds.x.values(), *ds.mask.values()])
        rows.append({"size": label, "n_samples": n * passes, "steps": passes * math.ceil(n / b),
                     "batch": b, "epoch_s": dt, "cycled_passes": passes, "peak_memory_mb": peak_memory_mb(s.device),
                     "memory_before_mb": base, "data_s": data_s, "dataset_mb": nbytes / 2**20,
                     "dataset_mb_if_materialised": passes * nbytes / 2**20})
        log(f"  {label:9s} N={n * passes:6d} {dt:8.1f} s/epoch  peak {rows[-1]['peak_memory_mb']:8.0f} MB")
    return rows
