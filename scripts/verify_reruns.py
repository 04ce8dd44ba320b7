"""Rerun committed runs from their config.yaml and compare test metrics exactly (CPU determinism).

    python scripts/verify_reruns.py results/runs/<experiment>/<run> [...]   # or --sample N --results DIR
Prints one line per run and exits 1 if any rerun differs.
"""

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from miar import config as C
from miar.records import is_complete
from miar.train import fit


def verify(run_dir: Path) -> bool:
    recorded = json.loads((run_dir / "metrics.json").read_text())["test"]
    cfg = C.load(str(run_dir / "config.yaml"))
    cfg = C.merge(cfg, {"train": {"progress": False, "save_model": False}})
    with tempfile.TemporaryDirectory() as tmp:
        rerun = fit(cfg, Path(tmp) / "r")["test"]
    same = rerun == recorded
    diff = {k: (recorded[k], rerun[k]) for k in recorded if recorded[k] != rerun[k]}
    print(f"{'same' if same else 'DIFFERENT'} {run_dir} {'' if same else diff}", flush=True)
    return same


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*")
    p.add_argument("--sample", type=int, default=0, help="verify this many random complete runs")
    p.add_argument("--results", default="results")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    runs = [Path(r) for r in a.runs]
    if a.sample:
        pool = sorted(d for d in Path(a.results, "runs").glob("*/*") if is_complete(d))
        runs += random.Random(a.seed).sample(pool, min(a.sample, len(pool)))
    return 0 if all([verify(r) for r in runs]) else 1


if __name__ == "__main__":
    sys.exit(main())
