"""The study's wall time: the redesigned study's sweeps from their records (:func:`study_wall`) and where its
time goes, tuning included (:func:`study_time_table`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def sweep_records(results: str | Path, name: str | None = None) -> pd.DataFrame:
    """Every ``results/sweeps/<sweep>-<start>.json``, oldest first."""
    rows = [json.loads(p.read_text()) for p in sorted((Path(results) / "sweeps").glob("*.json"))]
    df = pd.DataFrame(rows)
    if df.empty or name is None:
        return df
    return df[df["sweep"].map(lambda s: Path(str(s)).stem) == name].reset_index(drop=True)


STUDY_SWEEPS = ("primary", "ablations", "synthetic", "legacy", "textgen")  # the redesigned study (make study), after tuning


def _full(results: str | Path, name: str) -> dict | None:
    """The newest invocation of sweep ``name`` that ran all of it from scratch without failures."""
    df = sweep_records(results, name)
    if df.empty or "complete_from_scratch" not in df:
        return None
    full = df[df["complete_from_scratch"].astype(bool)]
    return None if full.empty else full.iloc[-1].to_dict()


def study_wall(results: str | Path) -> dict | None:
    """The study's wall time: the redesigned study's sweeps (:data:`STUDY_SWEEPS`), each its newest run from
    scratch, summed (``parts`` names them), once every one has such a record; None before (the first design's
    ``study`` sweep is not this study)."""
    parts = {n: _full(results, n) for n in STUDY_SWEEPS}
    if all(parts.values()):
        first = next(iter(parts.values()))
        tune = _tuning_parts(Path(results))
        return {**first, "sweep": "+".join(STUDY_SWEEPS), "wall_s": sum(float(p["wall_s"]) for p in parts.values()),
                "runs_in_sweep": sum(int(p["runs_in_sweep"]) for p in parts.values()),
                "workers": max(int(p["workers"]) for p in parts.values()), "parts": parts,
                "tuning_s": float(sum(wall for _, wall, _, _ in tune)),
                "tuning_runs": sum(len(envs) for _, _, _, envs in tune), "tuning_studies": len(tune)}
    return None




def _tuning_parts(results: Path) -> list[tuple[str, float, int, list[Path]]]:
    """Each tuning study with an Optuna file: (study, wall seconds from its trials' first start to last end,
    trials, its trial runs' env.json files), read with the standard library's sqlite3."""
    import sqlite3

    from miar.report.study import TUNING

    out = []
    for study in TUNING.values():
        db = results / "tune" / f"{study}.db"
        if not db.is_file():
            continue
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            start, end, n = con.execute("SELECT min(datetime_start), max(datetime_complete), count(*) FROM trials"
                                        ).fetchone()
        wall = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() if start and end else float("nan")
        out.append((study, wall, n, list((results / "tune" / "runs").glob(f"{study}+t*/s*/env.json"))))
    return out


def study_time_table(results: str | Path) -> pd.DataFrame:
    """Where the redesigned study's time goes: each tuning study (wall from its Optuna trials' start and end
    times) and each of the study's sweeps (its newest record), with the run count and the runs' own summed wall
    time (worker-seconds, from ``env.json``); the total is the rounded sum of the unrounded parts."""
    results, rows, raw = Path(results), [], []
    for study, wall, n, envs in _tuning_parts(results):
        raw.append(wall / 60)
        rows.append({"Part": f"tuning `{study}`", "Runs": len(envs), "Wall (min)": round(wall / 60, 1),
                     "Runs' own time (worker-min)": round(sum(json.loads(e.read_text()).get("wall_time_s", 0)
                                                              for e in envs) / 60, 1), "Trials": n})
    for name in STUDY_SWEEPS:
        df = sweep_records(results, name)
        if df.empty:
            continue
        r = df.iloc[-1]
        raw.append(float(r["wall_s"]) / 60)
        rows.append({"Part": f"sweep `{name}`", "Runs": int(r["runs_executed"]), "Wall (min)": round(float(r["wall_s"]) / 60, 1),
                     "Runs' own time (worker-min)": "-", "Trials": "-"})
    if rows:
        rows.append({"Part": "total", "Runs": sum(int(r["Runs"]) for r in rows),
                     "Wall (min)": round(sum(raw), 1),
                     "Runs' own time (worker-min)": "-", "Trials": "-"})
    return pd.DataFrame(rows, columns=["Part", "Runs", "Wall (min)", "Runs' own time (worker-min)", "Trials"],
                        dtype=object)
