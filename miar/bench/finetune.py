"""``miar bench --sections finetune``: one epoch of MiniLM fine-tuning as the study runs it, against a naive one.

Data: the 1284 training transcripts of MOSI's standard split when the real data is present (``$MIAR_DATA``),
else 1284 synthetic sentences of MOSI's length distribution (:func:`miar.data.text_splits.synthetic_texts`).
Model: text-only with MiniLM in front, batch 32, the trainer's own ``Trainer.epoch``.

- ``finetune_epoch_s``: ``top:2`` as the runs do it: the four frozen lower layers' outputs computed once
  (``cache_lower``, timed separately as ``cache_s``: once per run, not per epoch), length-bucketed batches
  trimmed to their longest, only the top two layers train.
- naive: ``full`` fine-tuning on token ids, batches in plain shuffled order padded to their longest, nothing
  cached; ``finetune_speedup_vs_naive`` = naive epoch / ``top:2`` epoch, measured in the same process.
- peak memory per variant (CPU: VmHWM after a reset; CUDA: max allocated).
- on CUDA also ``finetune_mpnet_full_epoch_s``: MPNet, every layer trained, bucketed batches, bf16 autocast
  (the issue's GPU target: <= 5 s); ``None`` with the reason when MPNet is not installed.
"""

from __future__ import annotations

import time

import torch

from miar import config as C
from miar.bench.core import peak_memory_mb, reset_peak_memory, sync
from miar.data import build_splits
from miar.model.text_backbone import cache_lower
from miar.train import Trainer


def bench_config(real: bool, quick: bool, finetune: str, bucket: bool, device: str,
                 backbone: str = "minilm") -> C.Config:
    size = 64 if quick else 1284
    base = [f"model.text_backbone={backbone}", "model.name=text_only", "data.modalities=[text]", "data.batch_size=32", f"model.finetune={finetune}",
            f"data.bucket={str(bucket).lower()}", f"train.device={device}", "train.progress=false",
            "train.threads=0"]
    if device == "cuda":
        base.append("train.amp=bf16")
    if real and not quick:
        return C.load("mosi_std_ft", overrides=base)
    return C.load("smoke", overrides=base + [
        f"data.synthetic.n_train={size}", "data.synthetic.n_valid=8",
        "data.synthetic.n_test=8", "data.synthetic.dims=[8, 5, 6]", "data.synthetic.seq_len=4",
        "model.d_model=64", "model.n_heads=4", "model.head_hidden=64", "model.proj_dim=32"])


def one_epoch(cfg: C.Config, cache: bool, warm_steps: int, log) -> dict:
    """Build the splits and the trainer as ``fit`` does, then time one ``Trainer.epoch`` on the train split."""
    reset_peak_memory(cfg.train.device)
    splits = {"train": build_splits(cfg)["train"]}
    trainer = Trainer(cfg, splits["train"].dims, len(splits["train"]), torch.device(cfg.train.device))
    t0 = time.perf_counter()
    if cache:
        splits = cache_lower(trainer.model, splits, trainer.device)
    sync(cfg.train.device)
    cache_s = time.perf_counter() - t0
    train = splits["train"]
    for i in range(warm_steps):  # allocator and kernels warm; not part of the timed epoch
        trainer.step(train.batch(torch.arange(32 * i, 32 * (i + 1)) % len(train)), update=False)
    t0 = time.perf_counter()
    losses = trainer.epoch(train)
    sync(cfg.train.device)
    epoch_s = time.perf_counter() - t0
    tokens = train.mask["text"].sum().item()
    row = {"finetune": cfg.model.finetune, "bucket": cfg.data.bucket, "cached": cache, "n": len(train),
           "tokens": int(tokens), "epoch_s": epoch_s, "cache_s": cache_s,
           "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
           "peak_memory_mb": peak_memory_mb(cfg.train.device), "train_loss": losses.get("train_loss")}
    log(f"  {cfg.model.finetune:6s} bucket={cfg.data.bucket!s:5s} cached={cache!s:5s} epoch {epoch_s:7.1f} s "
        f"(cache {cache_s:.1f} s)  peak {row['peak_memory_mb']:.0f} MB")
    return row


def bench(quick: bool, device: str, log) -> dict:
    """The two epochs and the figures the issue names (see the module docstring)."""
    from miar.data import data_root

    real = (data_root() / "CMU-MOSI" / "transcripts.csv").is_file()
    warm = 1 if quick else 2
    fast = one_epoch(bench_config(real, quick, "top:2", True, device), True, warm, log)
    naive = one_epoch(bench_config(real, quick, "full", False, device), False, warm, log)
    mpnet: dict | str = "CPU run: measured on CUDA only"
    if device == "cuda":
        from miar.data.tokens import BackboneUnavailable

        try:
            mpnet = one_epoch(bench_config(real, quick, "full", True, device, "mpnet"), False, warm, log)
        except BackboneUnavailable as e:
            mpnet = f"not measured: {e}"
    return {"finetune": {"data": "MOSI standard-split train transcripts" if real and not quick
                         else "synthetic transcripts (MOSI-like lengths)",
                         "backbone": "minilm", "batch": 32, "threads": torch.get_num_threads(),
                         "top2": fast, "naive_full": naive},
            "finetune_epoch_s": fast["epoch_s"],
            "finetune_speedup_vs_naive": naive["epoch_s"] / fast["epoch_s"],
            "finetune_peak_memory_mb": fast["peak_memory_mb"],
            "finetune_naive_peak_memory_mb": naive["peak_memory_mb"],
            "finetune_mpnet_full": mpnet,
            "finetune_mpnet_full_epoch_s": mpnet["epoch_s"] if isinstance(mpnet, dict) else None}


def table_lines(report: dict) -> list[str]:
    f = report["finetune"]
    out = [f"\nfine-tuning (MiniLM, {f['data']}, batch {f['batch']}, {f['threads']} threads):"]
    for key in ("top2", "naive_full"):
        r = f[key]
        out.append(f"  {key:10s} epoch {r['epoch_s']:7.1f} s  cache {r['cache_s']:5.1f} s  "
                   f"trainable {r['trainable_params']:>9d}  peak {r['peak_memory_mb']:7.0f} MB")
    out.append(f"finetune_epoch_s: {report['finetune_epoch_s']:.1f} s (target <= 15 s on 2 cores); "
               f"finetune_speedup_vs_naive: {report['finetune_speedup_vs_naive']:.2f}x (target >= 3x)")
    return out
