"""``miar collect``: tables and the summary from run records only (never from notebook outputs).

Reads ``DIR/runs/<experiment>/<run>/`` (complete records; incomplete ones are listed and left out) and writes,
atomically:

- ``DIR/tables/runs.csv``: one row per run: experiment, run, seed, ``test_<metric>`` for every metric,
  the selection criterion and its best validation value, best_epoch, epochs_run, wall_time_s, device;
- ``DIR/tables/summary.csv``: one row per experiment: n_seeds and ``<metric>_mean/_std/_ci95_low/_ci95_high``
  over its runs (``miar.metrics.summarize_seeds``: population std, Student-t 95% interval of the mean);
- ``DIR/tables/mmsa_names.csv``: each metric's name here (the columns above) beside MMSA's name for it
  (``Has0_acc_2``, ``Has0_F1_score``, ``Non0_acc_2``, ``Non0_F1_score``, ``Mult_acc_5``, ``Mult_acc_7``, ``MAE``,
  ``Corr``), for reading our tables beside MMSA's output; the values are fractions in both;
- ``DIR/summary.json``: ``{"schema_version": 1, "experiments": {NAME: {"n_seeds", "metrics": {METRIC:
  {"mean", "std", "ci95": [low, high]}}, "extra": {KEY: {..., "n"}}}}}`` (nan as null); ``metrics`` are
  the test metrics, ``extra`` the validation metrics (``valid_*``), gate weights (``gate_*``) and
  alignment numbers (``align_*``) where the runs have them; ``"comparisons"``: the rows of comparisons.csv;
- ``DIR/tables/comparisons.csv``: every comparison declared in ``miar/experiments/comparisons.yaml``, one row
  per (family, A, B, metric), with test-video bootstrap intervals, permutation and equivalence tests, Holm
  correction, power and the verdict (:mod:`miar.comparisons`; runs without ``predictions.csv`` are left out);
- only when cross-validated fold records exist: ``DIR/tables/legacy_cv.csv`` and ``summary.json``'s
  ``"legacy_cv"`` (``data.split: bc_test_cv``, the sweep ``legacy``), ``DIR/tables/cv.csv`` and ``"cv"``
  (``data.split: all_cv``, the sweep ``cv``): each repeat's folds pooled into one prediction per test utterance,
  its metrics per repeat and their mean (:mod:`miar.pooled`);
- with ``all_cv`` records, the cross-validated study's calibration and sensitivity tables
  (:mod:`miar.crossval`): ``DIR/tables/cv_calibration.csv`` (the A/A rate of each interval method) and
  ``DIR/tables/cv_sensitivity.csv`` (its comparisons without the standard split's validation videos).

Before writing, every record must prove itself (:mod:`miar.study.verify`): whole and the run its directory
names, its digests matching, its test metrics recomputed from its predictions, its labels the dataset's, no copy
of another seed, and its executed notebook ``DIR/notebooks/<experiment>/<run>.ipynb`` (required unless the record
carries digests) resolving, through its papermill parameters, to exactly the record's ``config.yaml``. The first
record that fails raises :class:`CollectError` naming it, and nothing is written.

What is incomplete is shown as such, not fatal: a validation-only record (a tuning trial, ``test: null``) is a
runs.csv row without test metrics and is not counted as a seed; a cross-validated experiment with no complete
repeat is a legacy_cv.csv row saying so. A table of :data:`TABLES` that this collection does not write (its
records were removed) is deleted, so no table outlives its records.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from tqdm import tqdm

from miar.atomic import write_together
from miar.comparisons import comparisons, load_families
from miar.metrics import METRICS, MMSA_NAMES, summarize_seeds
from miar.pooled import SPLITS, PoolError, collect_pooled
from miar.records import RunRecord, csv_text, is_complete
from miar.study.verify import CollectError, cross_check, verify

SCHEMA_VERSION = 1


TABLES = ("runs.csv", "summary.csv", "mmsa_names.csv", "legacy_cv.csv", "cv.csv", "comparisons.csv",
          "cv_calibration.csv", "cv_sensitivity.csv")  # collect's own


def find_runs(results: Path) -> tuple[list[Path], list[Path]]:
    """(complete, incomplete) run directories under ``results/runs/<experiment>/<run>/``, sorted."""
    dirs = sorted(p for p in (Path(results) / "runs").glob("*/*") if p.is_dir())
    return [p for p in dirs if is_complete(p)], [p for p in dirs if not is_complete(p)]


def run_row(record: RunRecord | Path) -> dict:
    """One runs.csv row from a complete run record (test metrics empty for a validation-only record)."""
    rec = record if isinstance(record, RunRecord) else RunRecord(record)
    run_dir, metrics, env = rec.dir, rec.metrics, rec.env
    test, valid = metrics.get("test") or {}, metrics.get("valid") or {}
    crit = metrics.get("criterion", "")
    row = {"experiment": rec.experiment, "run": rec.run, "seed": rec.config.get("seed")}
    row.update({f"test_{m}": test.get(m) for m in METRICS})
    row.update({"criterion": crit, "valid_criterion": valid.get(crit.removeprefix("valid_")),
                "best_epoch": metrics.get("best_epoch"), "epochs_run": metrics.get("epochs_run"),
                "wall_time_s": env.get("wall_time_s"), "device": env.get("device_name") or env.get("device")})
    row.update({f"valid_{m}": valid.get(m) for m in METRICS})
    row.update({f"gate_{k}": v for k, v in metrics.get("gate_mean_test", {}).items()})
    align = run_dir / "alignment.json"
    if align.is_file():
        numbers = json.loads(align.read_text())
        kinds = ("tokens", "features", "projected") if "projected" in numbers else ("tokens", "features")
        for kind in kinds:  # projected: a contrastive head's embeddings; files from before it lack the block
            for key in ("modality_gap", "silhouette_modality", "silhouette_polarity"):
                v = numbers.get(kind, {}).get(key)
                row[f"align_{kind}_{key}"] = v["mean"] if isinstance(v, dict) else v
    return row


EXTRA_PREFIXES = ("valid_", "gate_", "align_")  # summarised per experiment under "extra"


def _finite(values: list) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _tested(row: dict) -> bool:
    """Whether a runs.csv row has test metrics (a validation-only record has none and is no seed)."""
    return any(row[f"test_{m}"] is not None for m in METRICS)


def summarize(rows: list[dict]) -> dict:
    """summary.json's dict from runs.csv rows."""
    experiments: dict = {}
    for name in sorted({r["experiment"] for r in rows}):
        mine = [r for r in rows if r["experiment"] == name]
        out = {}
        for m in METRICS:
            vals = _finite([r[f"test_{m}"] for r in mine])
            s = summarize_seeds(vals) if vals else {"mean": None, "std": None, "ci95": [None, None]}
            out[m] = {"mean": s["mean"], "std": s["std"], "ci95": list(s["ci95"])}
        extra = {}
        keys = dict.fromkeys(k for r in mine for k in r if k.startswith(EXTRA_PREFIXES) and k != "valid_criterion")
        for k in keys:
            vals = _finite([r.get(k) for r in mine])
            if vals:
                s = summarize_seeds(vals)
                extra[k] = {"mean": s["mean"], "std": s["std"], "ci95": list(s["ci95"]), "n": len(vals)}
        experiments[name] = {"n_seeds": sum(map(_tested, mine)), "metrics": out, "extra": extra}
    return {"schema_version": SCHEMA_VERSION, "experiments": experiments}


def summary_rows(summary: dict) -> list[dict]:
    rows = []
    for name, e in summary["experiments"].items():
        row = {"experiment": name, "n_seeds": e["n_seeds"]}
        for m, s in e["metrics"].items():
            row.update({f"{m}_mean": s["mean"], f"{m}_std": s["std"],
                        f"{m}_ci95_low": s["ci95"][0], f"{m}_ci95_high": s["ci95"][1]})
        rows.append(row)
    return rows


def _nan_to_none(obj):
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def mmsa_name_rows() -> list[dict]:
    """One row per metric: our name, our column names in runs.csv and summary.csv, MMSA's name."""
    return [{"metric": m, "runs_csv": f"test_{m}", "summary_csv": f"{m}_mean", "mmsa": MMSA_NAMES[m]}
            for m in METRICS]


def collect(results: str | Path = "results") -> dict:
    """Verify every record, then write the tables and summary.json (all or none) and delete collect's tables
    that no record supports any more; returns the summary dict."""
    results = Path(results)
    complete, incomplete = find_runs(results)
    claimed = [d for d in incomplete if (d / "metrics.json").exists()]  # marked complete, but unreadable
    if not complete and not claimed:
        raise CollectError(f"{results / 'runs'}: no complete run records")
    records, _ = verify(results, complete + claimed)
    rows = [run_row(r) for r in records]
    rows.sort(key=lambda r: (r["experiment"], r["seed"] if r["seed"] is not None else 0, r["run"]))
    summary = _nan_to_none(summarize(rows))
    tables = {"runs.csv": csv_text(rows), "summary.csv": csv_text(summary_rows(summary)),
              "mmsa_names.csv": csv_text(mmsa_name_rows())}
    for split, name in SPLITS.items():
        try:
            pooled_rows, pooled = collect_pooled(results, split)
        except PoolError as e:
            raise CollectError(str(e)) from None
        if pooled_rows:  # absent before its sweep has run, so earlier results collect byte-identically
            tables[f"{name}.csv"] = csv_text(pooled_rows)
            summary[name] = _nan_to_none(pooled)
    interval = {}
    if "cv.csv" in tables:
        from miar import crossval  # lazy: only with the cross-validated study's records

        calibration = crossval.calibration_rows(results)
        method, why = crossval.interval_method(calibration)
        interval = dict.fromkeys(crossval.cv_families(), method)
        summary["cv_interval"] = {"interval": method, "why": why}
        tables["cv_calibration.csv"] = csv_text(calibration)
        tables["cv_sensitivity.csv"] = csv_text(crossval.sensitivity_rows(results, interval=method))
    comps = _comparisons(results, interval)
    summary["comparisons"] = _nan_to_none(comps)
    tables["comparisons.csv"] = csv_text(comps)
    (results / "tables").mkdir(parents=True, exist_ok=True)
    write_together({**{results / "tables" / k: v for k, v in tables.items()},  # all of them or none
                    results / "summary.json": json.dumps(summary, indent=2) + "\n"})
    for stale in sorted(set(TABLES) - set(tables)):  # e.g. legacy_cv.csv after the fold records were removed
        (results / "tables" / stale).unlink(missing_ok=True)
    return summary


def _comparisons(results: Path, interval: dict) -> list[dict]:
    """Every declared comparison (miar/experiments/comparisons.yaml), with a progress bar on a terminal."""
    families = load_families()
    total = sum(len(f["pairs"]) for f in families.values())
    with tqdm(total=total, desc="comparisons", unit="pair", disable=not sys.stderr.isatty()) as bar:
        return comparisons(results, families, progress=lambda *_: bar.update(), interval=interval)


__all__ = ["CollectError", "TABLES", "collect", "cross_check", "find_runs", "run_row", "summarize", "SCHEMA_VERSION"]
