"""The cross-validated primary study's tables as the book shows them, read from ``results/`` only:
its progress and per-model MAE (``summary.json`` ``cv``), its comparisons (``tables/comparisons.csv`` families
``cv_*``, and ``tables/cv_sensitivity.csv`` without the standard split's validation videos), the A/A check
(``tables/cv_calibration.csv``) and the tuning's trial noise beside its trial spread
(``results/tune/rescored/studies.csv``). Every function returns an empty frame before its file exists."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from miar.report.catalog import CV_EXTRA, CV_TABLE, MODELS, PRIMARY, TUNING
from miar.report.evidence import NOT_COMPARED, load_comparisons
from miar.report.formatting import num

FAMILIES = ("cv_sota", "cv_interaction", "cv_contrastive", "cv_aa")
NAMES = {**CV_TABLE, **CV_EXTRA}


def _summary(results: Path) -> dict:
    p = Path(results) / "summary.json"
    return (json.loads(p.read_text()).get("cv") or {}) if p.is_file() else {}


def interval_choice(results: Path) -> dict:
    """summary.json's ``cv_interval``: {"interval": "h" | "v", "why": str}; {} before the study has records."""
    p = Path(results) / "summary.json"
    return (json.loads(p.read_text()).get("cv_interval") or {}) if p.is_file() else {}


def progress_table(results: Path, repeats: int) -> pd.DataFrame:
    """Per experiment of the design: complete repeats (all folds pooled) of ``repeats``, and MAE mean and SD over
    them (each repeat one single trained model per fold, never an ensemble)."""
    cv = _summary(results)
    rows = []
    for name, lab in NAMES.items():
        e = cv.get(name) or {}
        m = (e.get("metrics") or {}).get(PRIMARY) or {}
        mean, sd = m.get("mean"), m.get("std")
        rows.append({"Model": lab, "Repeats": f"{e.get('n_repeats') or 0} of {repeats}",
                     "MAE": "-" if mean is None else f"{num(mean, 3)} ± {num(sd, 3)}" if sd is not None
                     else num(mean, 3)})
    return pd.DataFrame(rows)


def _row(r, interval: str) -> dict:
    lo, hi = ("ci_low", "ci_high") if interval == "v" else ("ci_low_h", "ci_high_h")
    ran = r["verdict"] != NOT_COMPARED
    ends = f"[{num(float(r[lo]), 3, True)}, {num(float(r[hi]), 3, True)}]" if ran else "-"
    deciding = str(r.get("deciding", "")).lower() == "true"
    return {"A vs B": f"{NAMES.get(r['a'], r['a'])} vs {NAMES.get(r['b'], r['b'])}" + (" (deciding)" if deciding else ""),
            "Repeats": int(r["n_seeds_a"]) if ran else 0,
            "MAE A − B [95%]": f"{num(float(r['diff']), 3, True)} {ends}" if ran else "-",
            "p (Holm)": "-" if not ran or not math.isfinite(float(r["p_holm"])) else
            "< 0.001" if float(r["p_holm"]) < 0.001 else f"{float(r['p_holm']):.3f}",
            "±": num((float(r[hi]) - float(r[lo])) / 2, 3) if ran else "-",
            "Videos needed": _videos(r) if ran else "-", "Verdict": r["verdict"]}


def _videos(r) -> str:
    """Test videos that would bring the 80%-power detectable difference down to the margin (comparisons.csv)."""
    v = float(r["videos_needed"])
    return f"{int(v):,}" if math.isfinite(v) else "-"


def comparison_table(results: Path, sensitivity: bool = False) -> pd.DataFrame:
    """The cross-validated families' MAE rows (comparisons.csv, or cv_sensitivity.csv), with the interval the
    A/A check chose (:func:`interval_choice`)."""
    if sensitivity:
        p = Path(results) / "tables" / "cv_sensitivity.csv"
        comps = pd.read_csv(p) if p.is_file() and p.stat().st_size else pd.DataFrame()
    else:
        comps = load_comparisons(results)
    if comps.empty:
        return pd.DataFrame()
    mine = comps[comps["family"].isin(FAMILIES) & (comps["metric"] == PRIMARY)]
    interval = interval_choice(results).get("interval", "h")
    return pd.DataFrame([_row(r, interval) for _, r in mine.iterrows()])


def calibration_table(results: Path) -> pd.DataFrame:
    """The A/A rates (cv_calibration.csv): per pair and method, the rate with its exact 95% interval."""
    p = Path(results) / "tables" / "cv_calibration.csv"
    if not p.is_file() or not p.stat().st_size:
        return pd.DataFrame()
    cal = pd.read_csv(p)
    return pd.DataFrame([{
        "A/A pair": "both pooled" if r["pair"] == "both" else
        " vs ".join(NAMES.get(x, x) for x in str(r["pair"]).split(" vs ")),
        "Method": r["what"], "Repeats": int(r["n_repeats"]), "Fired": f"{int(r['fired'])} of {int(r['resamples'])}",
        "Rate [95%]": f"{r['rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
        "In band": "yes" if str(r["in_band"]).lower() == "true" else "no"} for _, r in cal.iterrows()])


def trial_noise_table(results: Path) -> pd.DataFrame:
    """Each model's tuning re-scored (results/tune/rescored/studies.csv): the spread of its trials' mean validation
    MAE beside one trial's noise (median standard error of a trial mean), and the trial chosen."""
    p = Path(results) / "tune" / "rescored" / "studies.csv"
    if not p.is_file() or not p.stat().st_size:
        return pd.DataFrame()
    st = pd.read_csv(p).set_index("study")
    rows = []
    for model, study in TUNING.items():
        if study in st.index:
            s = st.loc[study]
            rows.append({"Model": MODELS[model], "Trials": int(s["trials"]), "Seeds each": int(s["seeds"]),
                         "Spread (SD of means)": num(float(s["trial_spread_sd"]), 4),
                         "Noise (SE of one)": num(float(s["trial_noise_se_median"]), 4),
                         "Chosen trial": int(s["chosen_trial"])})
    return pd.DataFrame(rows)


__all__ = ["FAMILIES", "calibration_table", "comparison_table", "interval_choice", "progress_table",
           "trial_noise_table"]
