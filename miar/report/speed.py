"""The study's speed on this machine, from ``results/bench/study_speed.json`` (``benchmarks/study_speed.py``): the
targets with their measured values, where one run's time goes, and named numbers for the performance page."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd

LABELS = {  # key of study_speed.json -> what it measures
    "frozen_run_s_median": "A frozen-encoder run, median over a 20-run real sweep (notebook, one worker's time)",
    "finetune_epoch_s": "A fine-tuned MiniLM epoch (top two layers)",
    "finetune_run_s_median": "A fine-tuned MiniLM run, median (the committed runs)",
    "workers2_speedup": "2 workers over 1, the same 20-run sweep (wall time ratio)",
    "study_wall_s": "The whole study, tuning included, 2 workers",
    "book_noop_s": "`make book` with the data present and nothing new",
}


SHORT = {  # the same measures, named briefly (the README's and the index's lead)
    "frozen_run_s_median": "a frozen-encoder run (median)", "finetune_epoch_s": "a fine-tuned epoch",
    "finetune_run_s_median": "a fine-tuned run (median)", "workers2_speedup": "2 workers over 1",
    "book_noop_s": "make book with nothing new",
}


def missed(d: dict) -> list[str]:
    """Each missed target but the study's own time, briefly: "a fine-tuned epoch 7.6 s (target ≤ 7.0 s)"."""
    met, bounds = d.get("targets", {}).get("met", {}), d.get("targets", {}).get("bounds", {})
    return [f"{SHORT[k]} {_value(k, d.get(k))} (target {_bound(k, bounds[k])})"
            for k in SHORT if met.get(k) is False]


def load_study_speed(results: str | Path) -> dict | None:
    path = Path(results) / "bench" / "study_speed.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _value(key: str, v) -> str:
    if v is None:
        return "not measured"
    if key == "workers2_speedup":
        return f"{v:.2f}×"
    return f"{v / 3600:.1f} h" if v >= 3600 else f"{v / 60:.1f} min" if v >= 600 else f"{v:.1f} s"


def _bound(key: str, b: float) -> str:
    return f"≥ {b:.1f}×" if key == "workers2_speedup" else f"≤ {_value(key, b)}"


def speed_targets(d: dict) -> pd.DataFrame:
    """One row per target of the speed issue: measured value, target, met (yes / no / -)."""
    t = d.get("targets", {})
    rows = []
    for key, label in LABELS.items():
        met = t.get("met", {}).get(key)
        rows.append({"Measure": label, "Value": _value(key, d.get(key)), "Target": _bound(key, t["bounds"][key]),
                     "Met": "-" if met is None else "yes" if met else "no"})
    return pd.DataFrame(rows)


def breakdown_table(d: dict) -> pd.DataFrame:
    """Per retrained run: its wall time, the training steps', validation's and checkpoints' shares of it, the rest
    (data, model build, test, record, the epoch loop), and the training steps' FLOP bound."""
    rows = []
    for b in d.get("breakdown", []):
        parts, total = b["parts_s"], sum(b["parts_s"].values())
        main = {"Steps": parts["train_steps"], "Valid.": parts["validation"], "Ckpt.": parts["checkpoint"]}
        row = {"Run": b["run"].split("+")[0].replace("mosi_", ""), "Wall (s)": round(total, 1)}
        row.update({k: f"{100 * v / total:.0f}%" for k, v in main.items()})
        row["Rest"] = f"{100 * (total - sum(main.values())) / total:.0f}%"
        row["FLOP bound (s)"] = round(b["flop_bound_s"], 2)
        rows.append(row)
    return pd.DataFrame(rows)


def speed_numbers(d: dict) -> dict[str, str]:
    """Named numbers the performance page glues into its sentences."""
    bd = d.get("breakdown", [])
    steps = [b["parts_s"]["train_steps"] / sum(b["parts_s"].values()) for b in bd]
    ratio = [sum(b["parts_s"].values()) / b["flop_bound_s"] for b in bd if b["flop_bound_s"] > 0]
    nb = d.get("notebook", {})
    out = {
        "speed_steps_share": f"{100 * statistics.median(steps):.0f}%" if steps else "-",
        "speed_flop_ratio_min": f"{min(ratio):.0f}" if ratio else "-",
        "speed_flop_ratio_max": f"{max(ratio):.0f}" if ratio else "-",
        "speed_outside_fit_share": f"{100 * nb['outside_fit_share']:.1f}%" if nb.get("runs") else "-",
        "speed_outside_fit_s": f"{nb['outside_fit_s_median']:.1f} s" if nb.get("runs") else "-",
        "speed_imports_s": f"{d['imports_s']:.1f} s" if "imports_s" in d else "-",
        "speed_same_metrics": f"{sum(b['same_test_metrics'] for b in bd)} of {len(bd)}",
        "speed_cpu": str(d.get("machine", {}).get("cpu_model", "-")),
        "speed_targets_met": f"{sum(bool(v) for v in d.get('targets', {}).get('met', {}).values())} of "
                             f"{len(d.get('targets', {}).get('met', {}))}",
    }
    return out


__all__ = ["LABELS", "SHORT", "breakdown_table", "load_study_speed", "missed", "speed_numbers", "speed_targets"]
