"""The fine-tuning benchmark and the GPU status for the performance chapter, from ``results/bench/``:
``finetune_cpu.json`` (``miar bench --sections finetune``), ``mmsa_memory.json`` (``scripts/mmsa_memory.py``)
and ``gpu.json`` (``scripts/gpu_check.sh``, only where a GPU machine ran it)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from miar.report.formatting import sig

FINETUNE_TARGETS = {"finetune_epoch_s": 15.0, "finetune_speedup_vs_naive": 3.0}  # issue 14, 2 CPU cores


def _load(results: str | Path, name: str) -> dict:
    p = Path(results) / "bench" / name
    return json.loads(p.read_text()) if p.is_file() else {}


def finetune_table(results: str | Path) -> pd.DataFrame:
    """MiniLM top:2 (frozen lower layers cached once per run, length-bucketed batches) against a naive full
    fine-tune (padding to the batch's longest, nothing cached), measured in one run."""
    d = _load(results, "finetune_cpu.json")
    ft = d.get("finetune")
    if not ft:
        return pd.DataFrame()
    rows = []
    for key, what in (("top2", "MiniLM, top 2 layers trained, lower layers cached"),
                      ("naive_full", "MiniLM, all layers trained, padded, nothing cached")):
        r = ft[key]
        rows.append({"Fine-tune": what, "Epoch (s)": sig(r["epoch_s"]), "One-off cache (s)": sig(r["cache_s"]) if r.get("cached") else "none",
                     "Trainable parameters": f"{r['trainable_params']:,}",
                     "Peak memory (MB)": sig(r["peak_memory_mb"])})
    return pd.DataFrame(rows)


def finetune_targets(results: str | Path) -> pd.DataFrame:
    d = _load(results, "finetune_cpu.json")
    rows = []
    for key, target in FINETUNE_TARGETS.items():
        v = d.get(key)
        if v is None:
            continue
        met = v <= target if key.endswith("_s") else v >= target
        rows.append({"Figure": key, "Measured": sig(v), "Target": ("<= " if key.endswith("_s") else ">= ")
                     + f"{target:g}", "Met": "yes" if met else "no"})
    load = d.get("machine", {}).get("load_average_start")
    if rows and load:
        rows.append({"Figure": "load average when it started (2 cores)", "Measured": sig(load[0]),
                     "Target": "-", "Met": "-"})
    return pd.DataFrame(rows)


def memory_table(results: str | Path) -> pd.DataFrame:
    """Peak memory of loading an MMSA pickle against the folder ``miar data convert`` writes."""
    d = _load(results, "mmsa_memory.json")
    names = {"pickle_all": "pickle, every modality", "converted_all": "converted folder, every modality",
             "pickle_audio_vision": "pickle, audio and vision", "converted_audio_vision":
             "converted folder, audio and vision"}
    return pd.DataFrame([{"Load": names.get(k, k), "Peak memory (MB)": sig(v["peak_rss_mb"]),
                          "Seconds": sig(v["load_s"])} for k, v in d.get("loads", {}).items()])


def gpu_statement(results: str | Path) -> str:
    """Whether the GPU figures exist; they are never estimated."""
    d = _load(results, "gpu.json")
    if not d:
        return ("**Not measured on a GPU.** No GPU machine has run `scripts/gpu_check.sh` for this study yet, so "
                "the GPU targets (MPNet full fine-tune epoch <= 5 s, MIAR MOSEI-size epoch <= 1 s in bf16) have "
                "no figures; the CUDA tests exist (`tests/integration/test_gpu.py`) and skip without a GPU.")
    return f"Measured on {d.get('machine', {}).get('device_name', 'a GPU')}: see `results/bench/gpu.json` below."
