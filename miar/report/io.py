"""Locating and reading ``results/``: ``summary.json``, ``tables/runs.csv``, the run records under ``runs/``
(metrics, predictions, alignment, environment), benchmark files and executed notebooks.
Missing files are not an error: the readers return empty results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from miar.metrics import METRICS, summarize_seeds
from miar.report.catalog import RESULTS_ENV


def repo_root(start: str | Path | None = None) -> Path:
    """The book root: the first directory upwards from ``start`` (default: cwd) with ``_config.yml`` and ``miar/``."""
    here = Path(start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "_config.yml").is_file() and (p / "miar").is_dir():
            return p
    return Path(__file__).resolve().parents[2]


def results_dir(path: str | Path | None = None) -> Path:
    """``path``, else ``$MIAR_RESULTS``, else ``<repo root>/results``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(RESULTS_ENV) or repo_root() / "results")


def load_summary(results: str | Path) -> dict[str, dict]:
    """``summary.json``'s experiments (name -> {"n_seeds", "metrics"}); {} when it does not exist yet."""
    p = Path(results) / "summary.json"
    if not p.is_file():
        return {}
    data = json.loads(p.read_text())
    if data.get("schema_version") != 1:
        raise ValueError(f"{p}: schema_version {data.get('schema_version')!r}, this book reads 1")
    return data.get("experiments", {})


def load_legacy(results: str | Path, keys: tuple[str, ...] = ("legacy_cv", "cv")) -> dict[str, dict]:
    """``summary.json``'s pooled cross-validated experiments (``legacy_cv``: cross-fitted in the bc test videos;
    ``cv``: the cross-validated primary study; their folds pooled per repeat) in the shape of
    :func:`load_summary`'s experiments, the repeats counted as seeds; {} before any is collected."""
    p = Path(results) / "summary.json"
    if not p.is_file():
        return {}
    data = json.loads(p.read_text())
    return {n: {"n_seeds": e.get("n_repeats"), "metrics": e.get("metrics", {})}
            for k in keys for n, e in (data.get(k) or {}).items()}


def without_folds(summary: dict) -> tuple[dict, list[str]]:
    """``summary.json``'s experiments without the cross-fitted fold records (one seed each, a fifth of the
    test videos: they are read pooled, in ``legacy_cv``), and the experiments whose folds were left out."""
    from miar.pooled import FOLD_DIR

    kept = {n: e for n, e in summary.items() if not FOLD_DIR.match(n)}
    return kept, sorted({m["experiment"] for n in summary if (m := FOLD_DIR.match(n))})


def load_runs(results: str | Path) -> pd.DataFrame:
    """``tables/runs.csv`` (one row per run); an empty frame when it does not exist yet."""
    p = Path(results) / "tables" / "runs.csv"
    if not p.is_file():
        return pd.DataFrame(columns=["experiment", "run", "seed", *(f"test_{m}" for m in METRICS)])
    return pd.read_csv(p)


def run_dirs(results: str | Path, experiment: str | None = None) -> list[Path]:
    """Complete run records (those with ``metrics.json``), sorted; of one experiment if given."""
    pattern = f"{experiment}/*/metrics.json" if experiment else "*/*/metrics.json"
    return sorted(p.parent for p in (Path(results) / "runs").glob(pattern))


def seed_values(runs: pd.DataFrame, experiment: str, metric: str) -> np.ndarray:
    """The finite per-seed test values of ``metric`` for ``experiment`` from runs.csv."""
    col = f"test_{metric}"
    if runs.empty or col not in runs:
        return np.array([])
    v = pd.to_numeric(runs.loc[runs["experiment"] == experiment, col], errors="coerce").to_numpy(float)
    return v[np.isfinite(v)]


def prediction_metric(results: str | Path, experiment: str, metric: str) -> dict | None:
    """``summarize_seeds`` of a metric computed from each run's ``predictions.csv``: ``has0_macro_f1``
    (the macro-F1 of the older bc-split papers) or ``majority`` (share of test labels >= 0)."""
    from sklearn.metrics import f1_score

    values = []
    for d in run_dirs(results, experiment):
        pred = pd.read_csv(d / "predictions.csv")
        y, p = pred["label"].to_numpy(float) >= 0, pred["pred"].to_numpy(float) >= 0
        values.append(float(np.mean(y)) if metric == "majority" else
                      float(f1_score(y, p, average="macro", zero_division=0)))
    return summarize_seeds(values) if values else None


def alignment_frame(results: str | Path) -> pd.DataFrame:
    """Every ``alignment.json`` (under ``runs/`` or ``alignment/``): one row per run and kind (tokens, features, and
    projected where the file has it: the contrastive head's embeddings; ``acts_on`` says what the head projects)."""
    cols = ["experiment", "run", "kind", "modality_gap", "silhouette_modality", "silhouette_polarity", "path",
            "acts_on"]
    rows, seen = [], set()
    for p in sorted([*Path(results).glob("runs/*/*/alignment.json"), *Path(results).glob("alignment/*/*/alignment.json")]):
        key = (p.parent.parent.name, p.parent.name)
        if key in seen:
            continue
        seen.add(key)
        data = json.loads(p.read_text())
        for kind in ("tokens", "features", *(("projected",) if "projected" in data else ())):
            s = data.get(kind) or {}
            pol = s.get("silhouette_polarity")
            rows.append({"experiment": key[0], "run": key[1], "kind": kind, "modality_gap": s.get("modality_gap"),
                         "silhouette_modality": s.get("silhouette_modality"),
                         "silhouette_polarity": pol.get("mean") if isinstance(pol, dict) else pol,
                         "path": str(p), "acts_on": s.get("acts_on")})
    df = pd.DataFrame(rows, columns=cols)
    for c in cols[3:6]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def env_frame(results: str | Path) -> pd.DataFrame:
    """One row per complete run record: its ``env.json`` plus experiment and run."""
    rows = [{"experiment": d.parent.name, "run": d.name, **json.loads((d / "env.json").read_text())}
            for d in run_dirs(results) if (d / "env.json").is_file()]
    return pd.DataFrame(rows, columns=None if rows else ["experiment", "run", "wall_time_s"])


def bench_files(results: str | Path) -> list[Path]:
    return sorted((Path(results) / "bench").glob("*.json"))


def notebooks(results: str | Path) -> list[Path]:
    return sorted((Path(results) / "notebooks").glob("**/*.ipynb"))


def staleness(results: str | Path) -> list[str]:
    """Disagreements between the run records and runs.csv (``miar collect`` has not been rerun)."""
    runs = load_runs(results)
    listed = {(e, r) for e, r in zip(runs["experiment"], runs["run"])} if not runs.empty else set()
    records = {(d.parent.name, d.name) for d in run_dirs(results)}
    out = [f"run record `{e}/{r}` is not in runs.csv" for e, r in sorted(records - listed)]
    out += [f"runs.csv lists `{e}/{r}` but its run record is missing" for e, r in sorted(listed - records)]
    return out
