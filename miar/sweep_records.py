"""The sweep record, ``results/sweeps/<name>-<start>.json``: one invocation's wall time (a new file each time),
written by ``miar sweep`` (:func:`write_sweep_record`) and read back as the study's wall time
(:func:`study_wall`), tuning included (:func:`tuning_parts`, from the Optuna files under ``results/tune/``).

Below both the runner that writes these records and the report and benchmark that read them."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING

from miar.declared import RESUMED_SWEEPS, STUDY_SWEEPS, TUNING, search_seeds, sweep_runs
from miar.records import atomic_write, cpu_model, git_commit, is_complete

if TYPE_CHECKING:
    import pandas as pd

KERNELS_FRESH, KERNELS_REUSED = "fresh per run", "one per worker, reset between runs"  # sweep records' "kernels"


def write_sweep_record(results: Path, name: str, started: str, wall_s: float, workers: int, threads: int,
                       n_runs: int, n_executed: int, failures: list, fresh_kernels: bool = False) -> Path:
    """Write the record; ``complete_from_scratch`` is true when this invocation ran every run of the
    sweep and none failed: then ``wall_s`` is the time the whole sweep takes on this machine."""
    record = {"sweep": name, "started_utc": started, "wall_s": round(wall_s, 1), "workers": workers,
              "omp_threads_per_worker": threads,
              "kernels": KERNELS_FRESH if fresh_kernels else KERNELS_REUSED,
              "runs_in_sweep": n_runs, "runs_executed": n_executed, "runs_failed": len(failures),
              "complete_from_scratch": n_executed == n_runs and not failures,
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "cpu_model": cpu_model(),
              "load_average_end": [round(x, 2) for x in os.getloadavg()], **git_commit()}
    path = results / "sweeps" / f"{Path(name).stem}-{started.replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(record, indent=1) + "\n")
    return path


def sweep_records(results: str | Path, name: str | None = None) -> pd.DataFrame:
    """Every ``results/sweeps/<sweep>-<start>.json``, oldest first."""
    import pandas as pd

    rows = [json.loads(p.read_text()) for p in sorted((Path(results) / "sweeps").glob("*.json"))]
    df = pd.DataFrame(rows)
    if df.empty or name is None:
        return df
    return df[df["sweep"].map(lambda s: Path(str(s)).stem) == name].reset_index(drop=True)


def full_run(results: str | Path, name: str) -> dict | None:
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
    parts = {n: full_run(results, n) for n in STUDY_SWEEPS}
    if all(parts.values()):
        first = next(iter(parts.values()))
        tune = tuning_parts(Path(results))
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
                "rescore_s": rescore_part(Path(results))["wall_s"],
                "tuning_runs": sum(len(envs) for _, _, _, envs in tune), "tuning_studies": len(tune)}
    return None


def rescore_part(results: Path) -> dict:
    """``miar rescore``'s invocations (``results/tune/sweeps/rescore-*.json``): summed wall seconds and runs
    executed; the re-scored runs done (every trial's seeds beyond the search's own) and their own summed time
    from env.json (worker-seconds: it also covers runs of invocations that wrote no record)."""
    df = sweep_records(results / "tune")
    mine = df[df["sweep"].map(lambda x: Path(str(x)).stem) == "rescore"] if not df.empty else df
    envs = []
    for study in TUNING.values():
        own = search_seeds(results, study)
        envs += [e for e in (results / "tune" / "runs").glob(f"{study}+t*/s*/env.json")
                 if own is not None and e.parent.name not in own]
    return {"wall_s": float(mine["wall_s"].astype(float).sum()) if not mine.empty else 0.0,
            "invocations": len(mine),
            "runs_executed": int(mine["runs_executed"].astype(int).sum()) if not mine.empty else 0,
            "runs_done": len(envs), "worker_s": float(sum(json.loads(e.read_text()).get("wall_time_s", 0)
                                                           for e in envs))}


def tuning_parts(results: Path) -> list[tuple[str, float, int, list[Path]]]:
    """Each tuning study with an Optuna file: (study, wall seconds from its trials' first start to last end,
    trials, its trial runs' env.json files), read with the standard library's sqlite3."""
    import sqlite3

    import pandas as pd

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
