"""The tuning budget (the study sweep's section 1b): every model of the main table is trained at the
recipe's learning rate and at one more, five seeds each; the tuned table takes, per model, the rate with
the lower mean *validation* MAE. The test split plays no part in the choice."""

from __future__ import annotations

import pandas as pd

from miar.report.formatting import fmt_stats
from miar.report.study import MAIN_TABLE, NOT_RUN, PRIMARY

LEARNING_RATES = {"": "1e-3 (recipe)", "lr3e-4": "3e-4"}  # variant of each main-table experiment -> rate


def _variant(name: str, v: str) -> str:
    return f"{name}+{v}" if v else name


def _valid(summary: dict, name: str) -> dict | None:
    e = summary.get(name)
    s = e and e.get("extra", {}).get(f"valid_{PRIMARY}")
    return s if s and s.get("mean") is not None else None


def tuned_choice(summary: dict, rows: dict[str, str] = MAIN_TABLE) -> dict[str, str | None]:
    """Main-table experiment -> the variant with the lowest mean validation MAE (None until every
    rate of that model has run: no choice is made on part of the budget)."""
    out = {}
    for name in rows:
        vals = {v: _valid(summary, _variant(name, v)) for v in LEARNING_RATES}
        out[name] = (None if any(s is None for s in vals.values())
                     else _variant(name, min(vals, key=lambda v: vals[v]["mean"])))
    return out


def tuning_table(summary: dict, rows: dict[str, str] = MAIN_TABLE) -> pd.DataFrame:
    """One row per model and rate: validation MAE (what chooses), test MAE (reported, never used)."""
    choice, out = tuned_choice(summary, rows), []
    for name, lab in rows.items():
        for v, lr in LEARNING_RATES.items():
            exp = _variant(name, v)
            e = summary.get(exp, {})
            test = e.get("metrics", {}).get(PRIMARY)
            out.append({"Model": lab, "Learning rate": lr, "Experiment": f"`{exp}`",
                        "Seeds": e.get("n_seeds") or NOT_RUN,
                        "Validation MAE": fmt_stats(_valid(summary, exp), PRIMARY) if _valid(summary, exp) else "-",
                        "Test MAE": fmt_stats({**test, "n": e.get("n_seeds")}, PRIMARY) if test else "-",
                        "Chosen on validation": "yes" if choice[name] == exp else
                        ("-" if choice[name] is None else "")})
    return pd.DataFrame(out)


def tuned_rows(summary: dict, rows: dict[str, str] = MAIN_TABLE) -> dict[str, str]:
    """The tuned main table's rows: chosen experiment -> label with its rate (models whose budget is
    incomplete are left out)."""
    out = {}
    for name, exp in tuned_choice(summary, rows).items():
        if exp is not None:
            v = exp.split("+", 1)[1] if "+" in exp else ""
            out[exp] = f"{rows[name]}, lr {LEARNING_RATES[v].split()[0]}"
    return out


def best_by_validation(summary: dict, names) -> str | None:
    """The experiment among ``names`` with the lowest mean validation MAE (None if none has one)."""
    ranked = ranked_by_validation(summary, names)
    return ranked[0] if ranked else None


def ranked_by_validation(summary: dict, names) -> list[str]:
    """``names`` that have results, by mean validation MAE, lowest first."""
    vals = {n: _valid(summary, n) for n in names}
    return sorted((n for n, v in vals.items() if v is not None), key=lambda n: vals[n]["mean"])
