"""Rerun committed runs from their config.yaml and compare test metrics exactly (CPU determinism).

    python scripts/verify_reruns.py results/runs/<experiment>/<run> [...]   # or --sample N --results DIR
Prints one line per run and exits 1 if any rerun differs; ``--json FILE`` also writes every comparison with
the CPU and SIMD level of the record and of the rerun (bitwise equality is expected on the same CPU
model and SIMD level only: AVX2 and AVX-512 kernels round float32 differently).
"""

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from miar import config as C
from miar.records import atomic_write, cpu_model, git_commit, is_complete, simd_level
from miar.train import fit


def verify(run_dir: Path) -> dict:
    recorded = json.loads((run_dir / "metrics.json").read_text())["test"]
    env = json.loads((run_dir / "env.json").read_text())
    recorded_on = env.get("device_name")
    cfg = C.load(str(run_dir / "config.yaml"))
    cfg = C.merge(cfg, {"train": {"progress": False, "save_model": False}})
    with tempfile.TemporaryDirectory() as tmp:
        rerun = fit(cfg, Path(tmp) / "r")["test"]
    same = rerun == recorded
    diff = {k: (recorded[k], rerun[k]) for k in recorded if recorded[k] != rerun[k]}
    print(f"{'same' if same else 'DIFFERENT'} {run_dir} {'' if same else diff}", flush=True)
    return {"run": str(run_dir), "same": same, "recorded_on": recorded_on, "rerun_on": cpu_model(),
            "recorded_simd": env.get("cpu_simd"), "rerun_simd": simd_level(),  # None: recorded before it was kept
            "commit": git_commit()["commit"], "differences": diff}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*")
    p.add_argument("--sample", type=int, default=0, help="verify this many random complete runs")
    p.add_argument("--results", default="results")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the comparisons here (e.g. results/reruns/verify.json)")
    p.add_argument("--append", action="store_true",
                   help="keep the checks already in --json (a run checked again replaces its old entry)")
    a = p.parse_args()
    runs = [Path(r) for r in a.runs]
    if a.sample:
        pool = sorted(d for d in Path(a.results, "runs").glob("*/*") if is_complete(d))
        runs += random.Random(a.seed).sample(pool, min(a.sample, len(pool)))
    checks = [verify(r) for r in runs]
    if a.json:
        out = Path(a.json)
        old = json.loads(out.read_text())["runs"] if a.append and out.is_file() else []
        keep = [c for c in old if c["run"] not in {n["run"] for n in checks}]
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, json.dumps({"runs": keep + checks}, indent=1) + "\n")
    return 0 if all(c["same"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
