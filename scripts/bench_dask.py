"""Benchmark of the Dask engine (issue 17) -> results/bench/dask.json.

Measured in one run on this machine: the shipped ``smoke`` sweep on the default LocalCluster with 2 workers
against the process pool it replaced (loaded from git history for this measurement only: the package's own
``miar sweep`` has one execution path), the same sweep on 1 worker, and the engine's overhead per run from
submit to the notebook's first cell (papermill's ``start_time``), runs submitted one at a time to a warm worker.

    .venv/bin/python scripts/bench_dask.py [--out results/bench/dask.json] [--overhead-runs 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEGACY = "afb446b"  # the last commit whose miar/study/executor.py is the home-made process pool
TINY = ["train.epochs=1", "data.synthetic.n_train=64", "data.synthetic.n_valid=32", "data.synthetic.n_test=32",
        "train.progress=false"]


def legacy_pool(tmp: Path):
    """The previous executor and its kernel engine, from git, as the package ``miar_legacy`` (spawned workers
    import it through PYTHONPATH)."""
    pkg = tmp / "miar_legacy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("executor", "papermill_engine"):
        src = subprocess.run(["git", "show", f"{LEGACY}:miar/study/{name}.py"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout
        (pkg / f"{name}.py").write_text(src.replace("from miar.study import papermill_engine",
                                                    "from miar_legacy import papermill_engine"))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp), str(REPO), os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(tmp))
    import miar_legacy.executor
    return miar_legacy.executor


def timed_sweep(run_sweep, results: Path, workers: int) -> float:
    t0 = time.perf_counter()
    rc = run_sweep("smoke", results=results, workers=workers, progress=False)
    assert rc == 0, f"sweep failed ({results})"
    return round(time.perf_counter() - t0, 2)


def overhead(tmp: Path, n: int) -> dict:
    """Submit-to-first-cell seconds of ``n`` tiny runs, one at a time, on a warm one-worker LocalCluster."""
    from miar.study import engine
    from miar.study.executor import STAGING, job, prepare
    from miar.study.plan import load_sweep
    from miar.study.worker import execute_run

    sweep = tmp / "tiny.yaml"
    sweep.write_text(json.dumps({"seeds": list(range(1, n + 2)), "runs": [{"experiment": "smoke", "overrides": TINY}]}))
    notebook, runs = load_sweep(str(sweep))
    results = tmp / "overhead"
    prepare(runs, results)
    out = []
    with engine.connect(workers=1) as client:
        for r in runs:  # the first run starts the kernel (cold); the others reuse it
            j = job(r, notebook, results, results / STAGING / "bench")
            ((_, res, submitted),) = list(engine.run_tasks(client, execute_run, [j]))
            assert res["error"] is None, res["error"]
            nb = json.loads(r.notebook_path(results).read_text())
            first = next(c for c in nb["cells"] if c["cell_type"] == "code")["metadata"]["papermill"]["start_time"]
            out.append(round(datetime.fromisoformat(first).timestamp() - submitted, 3))
    warm = sorted(out[1:])
    return {"overhead_cold_first_run_s": out[0], "overhead_warm_runs_s": out[1:],
            "overhead_warm_median_s": warm[len(warm) // 2]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "results" / "bench" / "dask.json"))
    ap.add_argument("--overhead-runs", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3, help="sweeps of each kind, interleaved (the median is kept)")
    args = ap.parse_args()
    from miar.records import cpu_model, git_commit
    from miar.study.executor import run_sweep
    with tempfile.TemporaryDirectory(prefix="miar-bench-dask-") as d:
        tmp = Path(d)
        os.chdir(tmp)
        legacy = legacy_pool(tmp)
        record = {"sweep": "smoke", "runs": 4, "cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
                  "machine": platform.machine(), "load_average_start": [round(x, 2) for x in os.getloadavg()],
                  "legacy_pool_commit": LEGACY, "repeats": args.repeat}
        times: dict[str, list] = {"pool_2_workers_s": [], "dask_2_workers_s": [], "dask_1_worker_s": []}
        for i in range(args.repeat):  # interleaved, the order alternating: the machine's load drifts
            order = [("pool_2_workers_s", legacy.run_sweep, 2), ("dask_2_workers_s", run_sweep, 2),
                     ("dask_1_worker_s", run_sweep, 1)]
            for name, fn, workers in order if i % 2 == 0 else order[::-1]:
                times[name].append(timed_sweep(fn, tmp / f"{name}-{i}", workers))
        for name, values in times.items():  # the median of the repeats, and each
            record[name] = sorted(values)[len(values) // 2]
            record[name.replace("_s", "_runs_s")] = values
        record.update(overhead(tmp, args.overhead_runs))  # submit -> the notebook's first cell
        record.update(load_average_end=[round(x, 2) for x in os.getloadavg()], **git_commit())
    record["dask_vs_pool"] = round(record["dask_2_workers_s"] / record["pool_2_workers_s"], 3)
    record["speedup_2_vs_1_worker"] = round(record["dask_1_worker_s"] / record["dask_2_workers_s"], 3)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
