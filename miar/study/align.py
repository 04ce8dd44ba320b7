"""``miar align``: the alignment analysis of an experiment's trained runs, executed with papermill.

For each experiment, the packaged ``alignment.ipynb`` runs once over every complete run that kept its
weights (``model.pt``), writes ``alignment.json`` and the t-SNE figures into each run directory, and
is saved as ``DIR/notebooks/<experiment>/alignment.ipynb``. Experiments whose runs all have a current
``alignment.json`` are skipped. ``miar collect`` then adds the numbers to the tables (``align_*``).
"""

from __future__ import annotations

import os
from pathlib import Path

from miar.paths import inside
from miar.records import is_complete
from miar.study.executor import PACKAGE_ROOT
from miar.study.lock import results_lock
from miar.study.notebook_io import execute_notebook
from miar.study.plan import notebooks_dir


def aligned_runs(results: Path, experiment: str) -> list[Path]:
    """Complete runs of ``experiment`` that kept their weights."""
    return sorted(d for d in inside(results / "runs", experiment, what="experiment").glob("*")
                  if is_complete(d) and (d / "model.pt").is_file())


def is_current(run_dir: Path) -> bool:
    a = run_dir / "alignment.json"
    return a.is_file() and a.stat().st_mtime >= (run_dir / "model.pt").stat().st_mtime


def run_alignment(experiments: list[str] | None, results: str | Path = "results", split: str = "test",
                  max_points: int = 600) -> int:
    """Analyse the given experiments (default: every experiment with saved weights); 0 on success."""
    results = Path(results)
    if not experiments:
        experiments = sorted({p.parent.parent.name for p in (results / "runs").glob("*/*/model.pt")})
    for exp in experiments:  # every name checked before anything is written
        inside(results / "runs", exp, what="experiment")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
    with results_lock(results):
        for exp in experiments:
            runs = aligned_runs(results, exp)
            if not runs:
                print(f"align {exp}: no complete runs with model.pt; skipped")
                continue
            if all(is_current(d) for d in runs):
                print(f"align {exp}: {len(runs)} runs already analysed")
                continue
            out = inside(results / "notebooks", exp, "alignment.ipynb", what="experiment")
            out.parent.mkdir(parents=True, exist_ok=True)
            print(f"align {exp}: {len(runs)} runs -> {out}")
            execute_notebook(notebooks_dir() / "alignment.ipynb", out, progress_bar=True,
                             parameters={"run_dirs": [str(d) for d in runs], "split": split,
                                         "max_points": max_points, "out_dir": ""})
    return 0
