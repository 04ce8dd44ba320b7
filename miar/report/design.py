"""The cross-validated study's declared design (``miar/experiments/designs/all_cv.yaml``) as the method page shows
it: the declaration in a table, when it was committed, and how many of its runs exist."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import yaml

DESIGN = Path(__file__).resolve().parents[1] / "experiments" / "designs" / "all_cv.yaml"


def load_design(path: Path = DESIGN) -> dict:
    """The design file, read as collect reads it (:func:`miar.crossval.design`) when it is the package's own."""
    if path == DESIGN:
        from miar.crossval import design

        return design()
    return yaml.safe_load(path.read_text())


def design_table(d: dict) -> pd.DataFrame:
    """One row per declared choice, in the declaration's words."""
    data, fams = d["data"], d["families"]
    experiments = {**d["models"], **d["ablations"], **d["calibration"]}
    rows = [
        ("Folds", f"{data['folds']} folds of whole videos over all 93 MOSI videos, {data['repeats']} repeats; "
                  f"{data['n_valid_videos']} validation videos from each training part"),
        ("Grouping", data["grouping"]),
        ("Features", f"{', '.join(data['modalities'])}; text {data['text_features']} (frozen), context {data['context']}"),
        ("Seeds", f"{d['seeds']['rule']}; {d['seeds']['aa_rule']}"),
        ("Experiments", f"{len(experiments)}: " + "; ".join(experiments.values())),
        ("Runs", str(d["runs"])),
        ("Tuning", d["tuning"]["selection"]),
        ("Estimand", d["estimand"]),
        ("Interval", d["inference"]["interval"]),
        ("Test", d["inference"]["test"]),
        ("A/A check", d["inference"]["aa_check"]),
        ("Families", "; ".join(f"{k} ({v['claim'] or 'calibration'}): {len(v['pairs'])} comparison(s)"
                              for k, v in fams.items())),
        ("Sensitivity", "; ".join(d["sensitivity"])),
        ("Scope", d["scope"]),
        ("Not in this design", "; ".join(d["not_in_this_design"])),
    ]
    return pd.DataFrame(rows, columns=["Declared", "Value"])


def declared_at(path: Path = DESIGN) -> str:
    """The commit that added the design and its date (``git log``), or "-" outside a git checkout."""
    try:
        out = subprocess.run(["git", "log", "--diff-filter=A", "--format=%h %ad", "--date=short", "--", str(path)],
                             capture_output=True, text=True, timeout=30, cwd=path.parent)
    except (OSError, subprocess.SubprocessError):
        return "-"
    lines = out.stdout.split("\n") if out.returncode == 0 else []
    return next((ln for ln in reversed(lines) if ln.strip()), "-")


def runs_done(results: Path) -> int:
    """Complete run records of the design's experiments under ``results/runs``."""
    return sum(1 for m in Path(results).glob("runs/mosi_cv_*/s*/metrics.json"))


__all__ = ["DESIGN", "declared_at", "design_table", "load_design", "runs_done"]
