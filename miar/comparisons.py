"""The study's comparisons table: which experiments are compared (``miar/experiments/comparisons.yaml``),
with which equivalence margins (``miar/experiments/margins.yaml``, declared before the runs), computed from
the runs' ``predictions.csv`` with the statistics of :mod:`miar.stats`.

``miar collect`` calls :func:`comparisons` and writes ``tables/comparisons.csv`` and ``summary.json``'s
``comparisons``: one row per (family, A, B, metric) with the columns of :data:`COLUMNS`. ``diff`` is
metric(A) - metric(B) of the seed-averaged predictions in the metric's own units (for MAE, negative means A
is better); ``ci_low/ci_high`` the 95% video-bootstrap interval, ``ci_low_h/ci_high_h`` the hierarchical one
(seeds and videos resampled) that the verdicts use; ``p_perm`` the sign-flip permutation p over videos,
``p_holm`` it Holm-adjusted within the family (per metric); ``p_tost`` the equivalence test against
``margin`` on the hierarchical distribution (``p_tost_holm`` adjusted); ``se_h`` the hierarchical standard
error; ``mdd80`` the minimum detectable difference at 80% power at the level alpha / (family size);
``seeds_needed`` / ``videos_needed`` what would bring it down to the margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from miar import stats as S
from miar.metrics import METRICS
from miar.records import Predictions, RecordError, RunRecord, is_complete

COLUMNS = ("family", "a", "b", "metric", "n_seeds_a", "n_seeds_b", "n_videos", "value_a", "value_b", "diff",
           "ci_low", "ci_high", "ci_low_h", "ci_high_h", "p_perm", "p_holm", "margin", "p_tost",
           "p_tost_holm", "se_h", "mdd80", "seeds_needed", "videos_needed", "verdict", "note")
NOT_RUN = "not run"
SETTINGS_KEYS = {"alpha", "power", "resamples", "seed", "margins"}


class ComparisonError(ValueError):
    """A comparisons or margins file that cannot be used, or two experiments on different test sets."""


def _yaml(name: str | Path) -> dict:
    path = Path(name) if isinstance(name, Path) else resources.files("miar") / "experiments" / name
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ComparisonError(f"{path}: cannot read ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ComparisonError(f"{path}: expected a mapping at the top level")
    return data


@dataclass(frozen=True)
class Settings:
    """margins.yaml: the test level, the power target, resampling and the margin of every metric."""

    alpha: float
    power: float
    resamples: int
    seed: int
    margins: dict[str, float]
    why: dict[str, str]


def load_settings(path: str | Path = "margins.yaml") -> Settings:
    """Read and check margins.yaml (unknown keys, a missing metric or a bad value: one-line error)."""
    data = _yaml(path)
    unknown = set(data) - SETTINGS_KEYS
    if unknown or SETTINGS_KEYS - set(data):
        raise ComparisonError(f"{path}: keys must be {sorted(SETTINGS_KEYS)}, got {sorted(data)}")
    m = data["margins"]
    if not isinstance(m, dict) or set(m) != set(METRICS):
        raise ComparisonError(f"{path}: margins must give exactly the metrics {list(METRICS)}")
    margins = {k: v.get("value") if isinstance(v, dict) else v for k, v in m.items()}
    why = {k: v.get("why", "") if isinstance(v, dict) else "" for k, v in m.items()}
    bad = [k for k, v in margins.items() if not isinstance(v, (int, float)) or not v > 0]
    ok = 0 < data["alpha"] < 1 and 0 < data["power"] < 1 and int(data["resamples"]) >= 100
    if bad or not ok:
        raise ComparisonError(f"{path}: need 0 < alpha, power < 1, resamples >= 100 and positive margins"
                              + (f" (bad: {', '.join(bad)})" if bad else ""))
    return Settings(float(data["alpha"]), float(data["power"]), int(data["resamples"]), int(data["seed"]),
                    {k: float(v) for k, v in margins.items()}, why)


def load_families(path: str | Path = "comparisons.yaml") -> dict[str, dict]:
    """Read and check comparisons.yaml: family -> {"what": str, "pairs": [[A, B], ...]}."""
    data = _yaml(path)
    fams = data.get("families")
    if set(data) != {"families"} or not isinstance(fams, dict) or not fams:
        raise ComparisonError(f"{path}: expected one key 'families' holding a mapping")
    for name, fam in fams.items():
        if not isinstance(fam, dict) or set(fam) != {"what", "pairs"} or not isinstance(fam["pairs"], list):
            raise ComparisonError(f"{path}: family {name!r} needs exactly 'what' and 'pairs'")
        for pair in fam["pairs"]:
            if not (isinstance(pair, list) and len(pair) == 2 and all(map(_entry_ok, pair))):
                raise ComparisonError(f"{path}: family {name!r}: {pair!r} is not [A, B] of names or "
                                      "{choose: [names]}")
    return fams


def _entry_ok(e) -> bool:
    return isinstance(e, str) or (isinstance(e, dict) and set(e) == {"choose"} and isinstance(e["choose"], list)
                                  and all(isinstance(n, str) for n in e["choose"]) and bool(e["choose"]))


def _runs(results: Path, experiment: str) -> list[RunRecord]:
    return [RunRecord(d) for d in sorted((results / "runs" / experiment).glob("*")) if d.is_dir() and is_complete(d)]


def load_predictions(results: str | Path, experiment: str) -> Predictions | None:
    """The complete runs' predictions of ``experiment``, aligned by utterance id (None when none has any).
    An experiment without runs of its own but with cross-validated fold records (``runs/<experiment>+r<R>f<F>``)
    gives its pooled predictions, one row per repeat (:func:`miar.pooled.pool`); None while none of its repeats
    has all its folds."""
    runs = _runs(Path(results), experiment)
    if not runs:
        from miar.pooled import Incomplete, pool  # lazy: miar.pooled imports miar.config

        try:
            p = pool(results, experiment)
        except Incomplete:
            return None
        if p is not None:
            return p
    frames, left_out = [], 0
    for rec in runs:
        try:
            frames.append((rec.dir, rec.predictions))
        except RecordError:
            left_out += 1
    if not frames:
        return None
    ids = frames[0][1].index
    for d, f in frames:
        if not f.index.equals(ids):
            raise ComparisonError(f"{d / 'predictions.csv'}: its test ids differ from the other runs of {experiment}")
    preds = np.stack([f["pred"].to_numpy(np.float64) for _, f in frames])
    return Predictions(experiment, tuple(ids), preds, frames[0][1]["label"].to_numpy(np.float64), left_out)


def valid_mae(results: str | Path, experiment: str) -> float:
    """Mean validation MAE over the complete runs of ``experiment`` (nan without runs)."""
    vals = []
    for rec in _runs(Path(results), experiment):
        v = (rec.metrics.get("valid") or {}).get("mae")
        if isinstance(v, (int, float)) and math.isfinite(v):
            vals.append(float(v))
    return float(np.mean(vals)) if vals else math.nan


def resolve(results: str | Path, entry) -> str:
    """An experiment name, or for ``{choose: [...]}`` the one with the lowest mean validation MAE (the first
    listed when none has runs yet)."""
    if isinstance(entry, str):
        return entry
    scores = {n: valid_mae(results, n) for n in entry["choose"]}
    ran = [n for n in entry["choose"] if math.isfinite(scores[n])]
    return min(ran, key=lambda n: scores[n]) if ran else entry["choose"][0]


def _cross_validated(name: str) -> bool:
    from miar.pooled import is_cv_experiment  # lazy, as above

    return is_cv_experiment(name)


def _empty_rows(family: str, a: str, b: str, note: str) -> list[dict]:
    return [{**dict.fromkeys(COLUMNS, math.nan), "family": family, "a": a, "b": b, "metric": m,
             "verdict": NOT_RUN, "note": note} for m in METRICS]


def _pair_rows(family: str, pa: Predictions, pb: Predictions, st: Settings) -> list[dict]:
    """Every metric's row for A vs B (Holm columns and verdict are filled per family afterwards)."""
    if pa.ids != pb.ids:
        raise ComparisonError(f"{pa.experiment} and {pb.experiment} were tested on different utterances: "
                              "they cannot be compared")
    pair = S.Pair(pa.preds, pb.preds, pa.labels, S.video_codes(pa.ids))
    pt = S.point(pair)
    dv = S.video_bootstrap(pair, st.resamples, st.seed)
    dh = S.hierarchical_bootstrap(pair, st.resamples, st.seed)
    pp = S.sign_flip_test(pair, st.resamples, st.seed)
    notes = [f"{p.left_out} run(s) of {p.experiment} without predictions.csv left out" for p in (pa, pb)
             if p.left_out] + [f"{p.experiment}: {p.note}" for p in (pa, pb) if p.note]
    if len(pa.preds) != len(pb.preds):
        notes.append("unequal seed counts: the side with more seeds averages over more of them")
    rows = []
    for m in METRICS:
        lo, hi = S.percentile_interval(dv[m])
        lo_h, hi_h = S.percentile_interval(dh[m])
        rows.append({"family": family, "a": pa.experiment, "b": pb.experiment, "metric": m,
                     "n_seeds_a": len(pa.preds), "n_seeds_b": len(pb.preds), "n_videos": pair.n_videos,
                     "value_a": pt[m][0], "value_b": pt[m][1], "diff": pt[m][2], "ci_low": lo, "ci_high": hi,
                     "ci_low_h": lo_h, "ci_high_h": hi_h, "p_perm": pp[m], "margin": st.margins[m],
                     "p_tost": S.tost(dh[m], st.margins[m]), "se_h": float(np.nanstd(dh[m], ddof=1)),
                     "_var_v": float(np.nanvar(dv[m], ddof=1)), "verdict": None, "note": "; ".join(notes)})
    return rows


def _finish_family(rows: list[dict], st: Settings) -> None:
    """Holm within the family per metric, then power and the verdict of each row (in place)."""
    for m in METRICS:
        mine = [r for r in rows if r["metric"] == m and r["verdict"] != NOT_RUN]
        p_holm = S.holm([r["p_perm"] for r in mine])
        p_tost_holm = S.holm([r["p_tost"] for r in mine])
        level = st.alpha / max(len(mine), 1)
        for r, ph, pth in zip(mine, p_holm, p_tost_holm):
            var_v = r.pop("_var_v")
            r.update(p_holm=float(ph), p_tost_holm=float(pth), mdd80=S.mdd(r["se_h"], level, st.power))
            r["seeds_needed"], r["videos_needed"] = S.needed(
                r["se_h"] ** 2, var_v, min(r["n_seeds_a"], r["n_seeds_b"]), r["n_videos"], r["margin"],
                level, st.power)
            r["verdict"] = S.decide(r["diff"], r["ci_low_h"], r["ci_high_h"], r["p_holm"], r["p_tost_holm"],
                                    m, st.alpha)


def comparisons(results: str | Path, families: dict | None = None, settings: Settings | None = None,
                progress=None) -> list[dict]:
    """Every comparison of every family, one dict per (family, A, B, metric) with :data:`COLUMNS`."""
    families = load_families() if families is None else families
    st = load_settings() if settings is None else settings
    cache: dict[str, Predictions | None] = {}
    out = []
    for family, fam in families.items():
        rows = []
        for ea, eb in fam["pairs"]:
            a, b = resolve(results, ea), resolve(results, eb)
            for name in (a, b):
                if name not in cache:
                    cache[name] = load_predictions(results, name)
            pa, pb = cache[a], cache[b]
            missing = [n for n, p in ((a, pa), (b, pb)) if p is None]
            if len(missing) == 2 and all(map(_cross_validated, missing)):
                continue  # a cross-validated pair before its sweep ran: no rows, so earlier tables stay unchanged
            rows += (_empty_rows(family, a, b, f"no runs with predictions.csv: {', '.join(missing)}") if missing
                     else _pair_rows(family, pa, pb, st))
            if progress:
                progress(family, a, b)
        _finish_family(rows, st)
        out += [{k: r.get(k, math.nan) for k in COLUMNS} for r in rows]
    return out


def frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as a DataFrame with :data:`COLUMNS` (also for an empty list)."""
    return pd.DataFrame(rows, columns=list(COLUMNS))
