"""Where the redesigned study's time goes, tuning included (:func:`study_time_table`), from the sweep records
and the tuning studies (:mod:`miar.sweep_records` reads them; :func:`study_wall` is the whole study's wall time)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from miar.declared import RESUMED_SWEEPS, STUDY_SWEEPS
from miar.sweep_records import rescore_part, resumed, study_wall, sweep_records, tuning_parts  # noqa: F401


def study_time_table(results: str | Path) -> pd.DataFrame:
    """Where the redesigned study's time goes: each tuning study (wall from its Optuna trials' start and end
    times) and each of the study's sweeps (its newest record), with the run count and the runs' own summed wall
    time (worker-seconds, from ``env.json``); the total is the rounded sum of the unrounded parts."""
    results, rows, raw = Path(results), [], []
    for study, wall, n, envs in tuning_parts(results):
        raw.append(wall / 60)
        rows.append({"Part": f"tuning `{study}`", "Runs": len(envs), "Wall (min)": round(wall / 60, 1),
                     "Runs' own time (worker-min)": round(sum(json.loads(e.read_text()).get("wall_time_s", 0)
                                                              for e in envs) / 60, 1), "Trials": n})
    rs = rescore_part(results)
    if rs["runs_done"]:
        raw.append(rs["wall_s"] / 60)
        rows.append({"Part": f"`miar rescore` (wall: the {rs['runs_executed']} runs of recorded invocations)",
                     "Runs": rs["runs_done"], "Wall (min)": round(rs["wall_s"] / 60, 1),
                     "Runs' own time (worker-min)": round(rs["worker_s"] / 60, 1), "Trials": "-"})
    for name in STUDY_SWEEPS:
        df = sweep_records(results, name)
        if df.empty:
            continue
        r = df.iloc[-1]
        raw.append(float(r["wall_s"]) / 60)
        rows.append({"Part": f"sweep `{name}`", "Runs": int(r["runs_executed"]), "Wall (min)": round(float(r["wall_s"]) / 60, 1),
                     "Runs' own time (worker-min)": "-", "Trials": "-"})
    for name in RESUMED_SWEEPS:
        r = resumed(results, name)
        if r is None:
            continue
        raw.append(r["wall_s"] / 60)
        made = [f"{r['runs_executed']} by {'these' if r['invocations'] > 1 else 'this'}",
                *(f"{k} by `{n}` (timed there)" for n, k in r["runs_elsewhere"].items()),
                *([f"{r['runs_unrecorded']} by an invocation stopped before it wrote a record (untimed)"]
                  if r["runs_unrecorded"] else [])]
        so_far = f"; {r['runs_done']} of {int(r['runs_in_sweep'])} runs done{'' if r['complete'] else ' so far'}: " \
                 + ", ".join(made)
        rows.append({"Part": f"sweep `{name}` ({r['invocations']} invocation{'s' * (r['invocations'] > 1)}{so_far})",
                     "Runs": r["runs_executed"], "Wall (min)": round(r["wall_s"] / 60, 1),
                     "Runs' own time (worker-min)": "-", "Trials": "-"})
    if rows:
        rows.append({"Part": "total", "Runs": sum(int(r["Runs"]) for r in rows),
                     "Wall (min)": round(sum(raw), 1),
                     "Runs' own time (worker-min)": "-", "Trials": "-"})
    return pd.DataFrame(rows, columns=["Part", "Runs", "Wall (min)", "Runs' own time (worker-min)", "Trials"],
                        dtype=object)
