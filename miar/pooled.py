"""The folds of a cross-validated experiment pooled into one prediction per test utterance.

An experiment with a cross-validated split (:data:`SPLITS`, :mod:`miar.data.cv`) runs as one record per fold and
repeat, ``runs/<experiment>+r<R>f<F>/<run>/``. Each record predicts only its fold's test videos; pooling the ``k``
folds of repeat R gives one prediction for each test utterance: the 752 bc test utterances for ``bc_test_cv``
(the sweep ``legacy``: the legacy table, ``tables/legacy_cv.csv``), all 2,199 MOSI utterances for ``all_cv`` (the
sweep ``cv``: the cross-validated primary study, ``tables/cv.csv``). The repeat and fold are read from each
record's ``config.yaml`` (and must agree with the directory name).

- :func:`pool_repeat` joins one repeat's folds and refuses, with a one-line :class:`PoolError`, a missing or
  duplicated fold, folds of different fold counts, two folds predicting one utterance, or labels that disagree.
- :func:`pool` pools every repeat of an experiment into one :class:`miar.records.Predictions` (a row per
  repeat); all repeats must cover the same utterances (the same videos, dealt differently). A repeat with
  missing folds (a sweep still running) is left out and named in ``incomplete``; with ``strict`` it is refused.
  With no complete repeat at all it raises :class:`Incomplete`.
- :func:`collect_pooled` gives ``miar collect`` the rows of one split's table (the MMSA metrics of each
  repeat's pooled predictions and their mean over repeats) and its ``summary.json`` entry; an experiment
  with no complete repeat gets one row, ``repeat`` "incomplete", saying which folds are missing.

The comparisons (:mod:`miar.comparisons`) read :func:`pool` as an experiment whose "seeds" are the repeats: the
models of one repeat (its folds pooled) are compared repeat by repeat (every model deals the videos of repeat R
into the same folds, with the same seed), test videos resampled.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from miar import config as C
from miar.errors import UserError
from miar.metrics import METRICS, compute_all, summarize_seeds
from miar.records import Predictions, RecordError, RunRecord, is_complete
from miar.stats import video_of

SPLITS = {"bc_test_cv": "legacy_cv", "all_cv": "cv"}  # split -> its table (tables/<name>.csv) and summary key
FOLD_DIR = re.compile(r"^(?P<experiment>.+)\+r(?P<repeat>\d+)f(?P<fold>\d+)$")  # runs/<experiment>+r<R>f<F>


class PoolError(UserError, ValueError):
    """Fold records that cannot be pooled into one prediction per test utterance."""


class Incomplete(PoolError):
    """A cross-validated experiment none of whose repeats has all its folds yet."""


@dataclass(frozen=True)
class FoldRun:
    """One fold's record: where it is, its repeat, fold and fold count, its test predictions (indexed by id)."""

    run_dir: Path
    repeat: int
    fold: int
    folds: int
    seed: int
    split: str
    predictions: pd.DataFrame  # index id; columns pred, label
    wall_time_s: float
    valid_mae: float = math.nan  # its validation MAE (early-stopping videos of its training part)


def _data_key(cfg: dict, key: str):
    """A data key of a record's config.yaml; an OPTIONAL key at its default is absent from the dump."""
    return cfg.get("data", {}).get(key, getattr(C.DataConfig(), key))


def read_fold(run_dir: Path) -> FoldRun:
    """One complete fold record; a record that is not a bc_test_cv fold, or whose directory names another
    fold, is refused."""
    m = FOLD_DIR.match(run_dir.parent.name)
    rec = RunRecord(run_dir)
    try:
        cfg, env, pred = rec.config, rec.env, rec.predictions
    except RecordError as e:
        raise PoolError(f"cannot read the fold record: {e}") from None
    if _data_key(cfg, "split") not in SPLITS:
        raise PoolError(f"{run_dir}: data.split is {_data_key(cfg, 'split')!r}, not one of {sorted(SPLITS)}: "
                        "not a fold record")
    repeat, fold, folds = (int(_data_key(cfg, k)) for k in ("cv_repeat", "cv_fold", "cv_folds"))
    if m is None or (int(m["repeat"]), int(m["fold"])) != (repeat, fold):
        raise PoolError(f"{run_dir}: its config is repeat {repeat} fold {fold}, its directory "
                        f"{run_dir.parent.name!r} says otherwise (expected <experiment>+r{repeat}f{fold})")
    return FoldRun(run_dir, repeat, fold, folds, int(cfg.get("seed", -1)), _data_key(cfg, "split"), pred,
                   float(env.get("wall_time_s") or 0.0), _valid_mae(rec))


def _valid_mae(rec: RunRecord) -> float:
    try:
        v = (rec.metrics.get("valid") or {}).get("mae")
    except RecordError:
        return math.nan
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def fold_runs(results: str | Path, experiment: str) -> list[FoldRun]:
    """Every complete fold record of ``experiment`` under ``results/runs/<experiment>+r<R>f<F>/``. A record read
    once is kept while its files are unchanged (same sizes and modification times): collect reads each
    experiment's folds for several tables."""
    dirs = sorted(d for d in (Path(results) / "runs").glob(f"{glob_escape(experiment)}+r*f*/*")
                  if d.is_dir() and is_complete(d) and (m := FOLD_DIR.match(d.parent.name))
                  and m["experiment"] == experiment)
    return [_read_fold_cached(d) for d in dirs]


_READ: dict[tuple, FoldRun] = {}


def _read_fold_cached(run_dir: Path) -> FoldRun:
    key = (str(run_dir.resolve()),) + tuple((f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else None
                                            for f in (run_dir / n for n in ("config.yaml", "predictions.csv",
                                                                             "metrics.json", "env.json")))
    if key not in _READ:
        if len(_READ) > 20_000:
            _READ.clear()
        _READ[key] = read_fold(run_dir)
    return _READ[key]


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def pool_repeat(runs: list[FoldRun]) -> pd.DataFrame:
    """One repeat's folds joined: predictions and labels indexed by id, sorted (PoolError on any gap or overlap)."""
    if not runs:
        raise PoolError("pool_repeat: no fold records")
    where = f"{runs[0].run_dir.parent.name.rsplit('+', 1)[0]} repeat {runs[0].repeat}"
    ks = {r.folds for r in runs}
    if len(ks) != 1 or len({r.repeat for r in runs}) != 1:
        raise PoolError(f"{where}: fold records of different fold counts {sorted(ks)} or repeats")
    k = ks.pop()
    seen: dict[int, Path] = {}
    for r in runs:
        if r.fold in seen:
            raise PoolError(f"{where}: fold {r.fold} twice ({seen[r.fold]} and {r.run_dir}); keep one")
        seen[r.fold] = r.run_dir
    missing = sorted(set(range(k)) - set(seen))
    if missing:
        raise PoolError(f"{where}: fold(s) {', '.join(map(str, missing))} of {k} missing")
    joined = pd.concat([r.predictions for r in sorted(runs, key=lambda r: r.fold)])
    dup = joined.index[joined.index.duplicated()]
    if len(dup):
        raise PoolError(f"{where}: utterance {dup[0]} is predicted by two folds: the folds overlap")
    return joined.sort_index()


def pool(results: str | Path, experiment: str, strict: bool = False) -> Predictions | None:
    """Every repeat of ``experiment`` pooled (None when it has no fold records); see the module docstring."""
    runs = fold_runs(results, experiment)
    if not runs:
        return None
    frames, incomplete = {}, {}
    for rep in sorted({r.repeat for r in runs}):
        mine = [r for r in runs if r.repeat == rep]
        try:
            frames[rep] = pool_repeat(mine)
        except PoolError as e:
            if strict or "missing" not in str(e):
                raise
            incomplete[rep] = str(e).split(": ", 1)[1]
    if not frames:
        raise Incomplete(f"{experiment}: no complete repeat ({'; '.join(f'{r}: {w}' for r, w in incomplete.items())})")
    first = next(iter(frames.values()))
    for rep, f in frames.items():
        if not f.index.equals(first.index):
            raise PoolError(f"{experiment}: repeat {rep} covers other utterances than repeat {min(frames)}")
        if not np.allclose(f["label"].to_numpy(), first["label"].to_numpy(), rtol=0, atol=1e-6):
            raise PoolError(f"{experiment}: repeat {rep}'s labels differ from repeat {min(frames)}'s")
    reps = tuple(frames)
    return Predictions(experiment, tuple(first.index), np.stack([frames[r]["pred"].to_numpy(np.float64) for r in reps]),
                       first["label"].to_numpy(np.float64), note=_note(incomplete), repeats=reps,
                       seeds=tuple(tuple(sorted({x.seed for x in runs if x.repeat == r})) for r in reps),
                       wall_time_s=tuple(sum(x.wall_time_s for x in runs if x.repeat == r) for r in reps),
                       incomplete=incomplete)


def cv_experiments(results: str | Path, split: str | None = None) -> list[str]:
    """Names of the experiments with fold records under ``results/runs`` (of ``split`` only, when given: read
    from the experiment's definition in miar/experiments/, else from its first fold record)."""
    names = {m["experiment"] for d in (Path(results) / "runs").glob("*+r*f*") if (m := FOLD_DIR.match(d.name))}
    return sorted(n for n in names if split is None or split_of(results, n) == split)


def split_of(results: str | Path, name: str) -> str | None:
    """The cross-validated split of experiment ``name``: its definition's, else its first fold record's."""
    try:
        split = C.load(name).data.split
        return split if split in SPLITS else None
    except C.ConfigError:
        runs = fold_runs(results, name)
        return runs[0].split if runs else None


def is_cv_experiment(name: str) -> bool:
    """Whether ``name`` is an experiment of miar/experiments/ that runs as cross-validated folds."""
    try:
        return C.load(name).data.split in SPLITS
    except C.ConfigError:
        return False


def valid_mae(results: str | Path, name: str) -> float:
    """Mean validation MAE over every complete fold record of ``name`` (nan without any): what chooses the
    strongest baseline of a cross-validated family, the test folds never."""
    vals = [r.valid_mae for r in fold_runs(results, name) if math.isfinite(r.valid_mae)]
    return float(np.mean(vals)) if vals else math.nan


def _note(incomplete: dict[int, str]) -> str:
    return "; ".join(f"repeat {r} left out ({why})" for r, why in incomplete.items())


def note(p: Predictions) -> str:
    """Which repeats of a pooled experiment were left out, and why ("" when none was)."""
    return _note(p.incomplete)


def collect_pooled(results: str | Path, split: str = "bc_test_cv") -> tuple[list[dict], dict]:
    """The rows of ``split``'s table (one per experiment and repeat, then its ``mean`` over repeats) and its
    summary.json entry (experiment -> n_repeats, repeats, metrics: {mean, std, ci95, per_repeat})."""
    rows, summary = [], {}
    for name in cv_experiments(results, split):
        try:
            p = pool(results, name)
        except Incomplete as e:
            rows.append(_incomplete_row(name, str(e).split(": ", 1)[1]))
            summary[name] = {"n_repeats": 0, "repeats": [], "n_utterances": 0, "note": rows[-1]["note"],
                             "metrics": {k: {"mean": None, "std": None, "ci95": [None, None], "per_repeat": []}
                                         for k in METRICS}}
            continue
        per = [compute_all(pred, p.labels) for pred in p.preds]
        n_videos = len({video_of(i) for i in p.ids})
        for rep, seeds, wall, m in zip(p.repeats, p.seeds, p.wall_time_s, per):
            rows.append({"experiment": name, "repeat": rep, "seeds": " ".join(map(str, seeds)),
                         "n_utterances": len(p.ids), "n_videos": n_videos, "wall_time_s": round(wall, 3),
                         **{k: m[k] for k in METRICS}, "note": ""})
        stats = {k: summarize_seeds([m[k] for m in per]) for k in METRICS}
        rows.append({"experiment": name, "repeat": "mean", "seeds": "", "n_utterances": len(p.ids),
                     "n_videos": n_videos, "wall_time_s": round(sum(p.wall_time_s), 3),
                     **{k: stats[k]["mean"] for k in METRICS}, "note": note(p)})
        summary[name] = {"n_repeats": len(p.repeats), "repeats": list(p.repeats), "n_utterances": len(p.ids),
                         "metrics": {k: {"mean": s["mean"], "std": s["std"], "ci95": list(s["ci95"]),
                                         "per_repeat": [m[k] for m in per]} for k, s in stats.items()},
                         "note": note(p)}
    return rows, summary


def _incomplete_row(name: str, why: str) -> dict:
    """legacy_cv.csv's row for an experiment with no complete repeat: shown, with no numbers."""
    return {"experiment": name, "repeat": "incomplete", "seeds": "", "n_utterances": 0, "n_videos": 0,
            "wall_time_s": 0.0, **dict.fromkeys(METRICS, math.nan), "note": why}


__all__ = ["FoldRun", "Incomplete", "PoolError", "SPLITS", "collect_pooled", "cv_experiments", "fold_runs",
           "is_cv_experiment", "pool", "pool_repeat", "read_fold", "split_of", "valid_mae"]
