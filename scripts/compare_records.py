"""Compare two results directories run for run: how far apart are the same configs on two machines?

    python scripts/compare_records.py OLD_RESULTS NEW_RESULTS --json results/reruns/<name>.json \
        [--old-label "..."] [--new-label "..."]

Runs present and complete in both with the same ``config.yaml`` are compared metric by metric (validation
and test), with the selected epoch; the per-experiment means of test MAE and binary accuracy are compared
too, since those are what the book reports. Prints a summary; the JSON holds it and every run's differences.
A run whose config differs, or that is missing on one side, is listed and not compared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from miar.records import atomic_write
from miar.report.io import run_dirs

MEANS = ("mae", "has0_acc2", "non0_acc2", "corr")


def _runs(results: Path) -> dict[str, Path]:
    return {f"{d.parent.name}/{d.name}": d for d in run_dirs(results)}


def _env(runs: dict[str, Path]) -> dict:
    """The ``env.json`` of one run (the commit and device of a study are those of each of its runs)."""
    return json.loads((next(iter(runs.values())) / "env.json").read_text()) if runs else {}


def compare(old: Path, new: Path) -> dict:
    a, b = _runs(old), _runs(new)
    common = sorted(set(a) & set(b))
    same_cfg = [k for k in common if (a[k] / "config.yaml").read_text() == (b[k] / "config.yaml").read_text()]
    runs, per_exp = [], {}
    for k in same_cfg:
        ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a[k], b[k]))
        diff = {f"{split}_{m}": mb[split][m] - ma[split][m] for split in ("valid", "test") for m in ma[split]}
        runs.append({"run": k, "identical": ma["test"] == mb["test"] and ma["valid"] == mb["valid"],
                     "same_epoch": ma.get("best_epoch") == mb.get("best_epoch"),
                     "max_abs_diff": max(abs(v) for v in diff.values()), "diff": diff})
        per_exp.setdefault(k.split("/")[0], []).append((ma["test"], mb["test"]))
    means = []
    for exp, pairs in sorted(per_exp.items()):
        row = {"experiment": exp, "n": len(pairs)}
        for m in MEANS:
            row[f"old_{m}"] = statistics.fmean(p[0][m] for p in pairs)
            row[f"new_{m}"] = statistics.fmean(p[1][m] for p in pairs)
        means.append(row)
    ea, eb = _env(a), _env(b)
    test_mae = [abs(r["diff"]["test_mae"]) for r in runs]
    return {
        "old": {"results": str(old), "commit": ea.get("commit"), "device_name": ea.get("device_name")},
        "new": {"results": str(new), "commit": eb.get("commit"), "device_name": eb.get("device_name")},
        "runs_compared": len(runs), "runs_identical": sum(r["identical"] for r in runs),
        "runs_same_epoch": sum(r["same_epoch"] for r in runs),
        "config_differs": sorted(set(common) - set(same_cfg)),
        "only_old": sorted(set(a) - set(b)), "only_new": sorted(set(b) - set(a)),
        "test_mae_abs_diff": {"median": statistics.median(test_mae) if test_mae else None,
                              "max": max(test_mae) if test_mae else None},
        "experiment_mean_abs_diff": {m: max((abs(r[f"new_{m}"] - r[f"old_{m}"]) for r in means), default=None)
                                     for m in MEANS},
        "experiments": means, "runs": runs,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--json", help="write the comparison here")
    p.add_argument("--old-label", default=None, help="e.g. the old machine's CPU, where env.json lacks it")
    p.add_argument("--new-label", default=None)
    a = p.parse_args()
    for d in (a.old, a.new):
        if not Path(d, "runs").is_dir():
            print(f"{d}: no runs/ directory", file=sys.stderr)
            return 2
    out = compare(Path(a.old), Path(a.new))
    if not out["runs_compared"]:
        print(f"{a.old} and {a.new}: no complete run with the same config.yaml in both", file=sys.stderr)
        return 2
    out["old"]["label"], out["new"]["label"] = a.old_label, a.new_label
    print(f"{out['runs_compared']} runs compared: {out['runs_identical']} identical, "
          f"{out['runs_same_epoch']} with the same selected epoch; |test MAE diff| median "
          f"{out['test_mae_abs_diff']['median']:.2g}, max {out['test_mae_abs_diff']['max']:.2g}; "
          f"largest change of an experiment's mean test MAE {out['experiment_mean_abs_diff']['mae']:.2g}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(Path(a.json), json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
