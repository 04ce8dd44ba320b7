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
RESUMED_SWEEPS = ("primary_ft", "cv")  # sweeps too long for one session: their time is the sum of their invocations


def _full(results: str | Path, name: str) -> dict | None:
    """The newest invocation of sweep ``name`` that ran all of it from scratch without failures."""
    df = sweep_records(results, name)
    if df.empty or "complete_from_scratch" not in df:
        return None
    full = df[df["complete_from_scratch"].astype(bool)]
    return None if full.empty else full.iloc[-1].to_dict()


def resumed(results: str | Path, name: str) -> dict | None:
    """A sweep run in several invocations (:data:`RESUMED_SWEEPS`): the sum of their wall times and executed
    runs, and whether every run the sweep names is now complete. Of its complete runs, ``runs_elsewhere``
    counts, per study sweep (:data:`STUDY_SWEEPS`), those that sweep names too (it made them; their time is its), and
    ``runs_unrecorded`` are the rest beyond what the records executed: runs of an invocation that wrote no
    record (stopped before it could), whose time is in no total. None before its first record."""
    from miar.records import is_complete
    from miar.study.plan import sweep_runs

    df = sweep_records(results, name)
    if df.empty:
        return None
    last = df.iloc[-1].to_dict()
    runs = sweep_runs(name)
    done = {r for r in runs if is_complete(Path(results) / "runs" / r[0] / f"s{r[1]}")}
    elsewhere = {n: k for n in STUDY_SWEEPS if (k := len(done & sweep_runs(n)))}
    executed = int((df["runs_executed"].astype(int) - df["runs_failed"].astype(int)).sum())
    return {**last, "sweep": name, "wall_s": float(df["wall_s"].astype(float).sum()), "invocations": len(df),
            "runs_executed": executed, "runs_done": len(done), "runs_elsewhere": elsewhere,
            "runs_unrecorded": max(0, len(done) - sum(elsewhere.values()) - executed),
            "complete": len(done) >= int(last["runs_in_sweep"])}


def study_wall(results: str | Path) -> dict | None:
    """The study's wall time: the redesigned study's sweeps (:data:`STUDY_SWEEPS`), each its newest run from
    scratch, and the invocations so far of the sweeps that span sessions (:data:`RESUMED_SWEEPS`), summed
    (``parts`` names them; ``complete`` is False while a resumed sweep has runs to go), once every study sweep
    has such a record; None before (the first design's ``study`` sweep is not this study)."""
    parts = {n: _full(results, n) for n in STUDY_SWEEPS}
    if all(parts.values()):
        first = next(iter(parts.values()))
        tune = _tuning_parts(Path(results))
        more = {n: r for n in RESUMED_SWEEPS if (r := resumed(results, n)) is not None}
        return {**first, "sweep": "+".join([*STUDY_SWEEPS, *more]),
                "wall_s": sum(float(p["wall_s"]) for p in [*parts.values(), *more.values()]),
                "runs_in_sweep": sum(int(p["runs_in_sweep"]) for p in parts.values())
                + sum(r["runs_executed"] for r in more.values()),
                "workers": max(int(p["workers"]) for p in parts.values()), "parts": {**parts, **more},
                "complete": len(more) == len(RESUMED_SWEEPS) and all(r["complete"] for r in more.values()),
                "pending": {n: "not started" if n not in more else f"{more[n]['runs_done']} of "
                            f"{int(more[n]['runs_in_sweep'])} runs done" for n in RESUMED_SWEEPS
                            if n not in more or not more[n]["complete"]},
                "tuning_s": float(sum(wall for _, wall, _, _ in tune)),
                "tuning_runs": sum(len(envs) for _, _, _, envs in tune), "tuning_studies": len(tune)}
    return None




def _tuning_parts(results: Path) -> list[tuple[str, float, int, list[Path]]]:
    """Each tuning study with an Optuna file: (study, wall seconds from its trials' first start to last end,
    trials, its trial runs' env.json files), read with the standard library's sqlite3."""
    import sqlite3

    from miar.report.study import TUNING
    from miar.report.tuning import search_seeds

    out = []
    for study in TUNING.values():
        db = results / "tune" / f"{study}.db"
        if not db.is_file():
            continue
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            start, end, n = con.execute("SELECT min(datetime_start), max(datetime_complete), count(*) FROM trials"
                                        ).fetchone()
        wall = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() if start and end else float("nan")
        own = search_seeds(results, study)  # miar rescore's extra seeds are the cross-validated study's, not the search's
        envs = [e for e in (results / "tune" / "runs").glob(f"{study}+t*/s*/env.json")
                if own is None or e.parent.name in own]
        out.append((study, wall, n, envs))
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
