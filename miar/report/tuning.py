"""The equal-budget search (``make tune``): every model the same number of trials over its declared space
(``miar/experiments/spaces/<model>.yaml``), on the primary setting (standard split, text mpnet + audio), two seeds
per trial, chosen by mean *validation* MAE (trials never evaluate the test split). The chosen trial
(``results/tune/<study>-best.yaml``) is what the primary table runs, with ten fresh seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from miar.declared import SPACES_DIR, TUNING, search_seeds  # noqa: F401 (search_seeds: re-exported)
from miar.report.catalog import MODELS, NOT_YET_RUN, PRIMARY, tuned


def _valid(summary: dict, name: str) -> dict | None:
    e = summary.get(name)
    s = e and e.get("extra", {}).get(f"valid_{PRIMARY}")
    return s if s and s.get("mean") is not None else None


def best_by_validation(summary: dict, names) -> str | None:
    """The experiment among ``names`` with the lowest mean validation MAE (None if none has one)."""
    ranked = ranked_by_validation(summary, names)
    return ranked[0] if ranked else None


def ranked_by_validation(summary: dict, names) -> list[str]:
    """``names`` that have results, by mean validation MAE, lowest first."""
    vals = {n: _valid(summary, n) for n in names}
    return sorted((n for n, v in vals.items() if v is not None), key=lambda n: vals[n]["mean"])


def chosen(results: str | Path) -> dict[str, dict]:
    """Model -> its study's ``-best.yaml`` (the chosen trial), for the studies that have one."""
    import yaml

    out = {}
    for model, study in TUNING.items():
        p = Path(results) / "tune" / f"{study}-best.yaml"
        if p.is_file():
            out[model] = yaml.safe_load(p.read_text())
    return out


def trials(results: str | Path, study: str) -> pd.DataFrame:
    """One row per trial with complete records: its number and mean validation MAE over the seeds the search ran
    (``miar rescore``'s extra seeds of the same trials are not part of the search's own scores)."""
    rows, own = [], search_seeds(results, study)
    for d in sorted((Path(results) / "tune" / "runs").glob(f"{study}+t*")):
        vals = []
        for m in sorted(d.glob("s*/metrics.json")):
            if own is not None and m.parent.name not in own:
                continue
            try:
                vals.append(json.loads(m.read_text())["valid"][PRIMARY])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        if vals:
            rows.append({"trial": int(d.name.rsplit("+t", 1)[1]), "valid": sum(vals) / len(vals), "seeds": len(vals)})
    return pd.DataFrame(rows, columns=["trial", "valid", "seeds"])


def _space_size(model: str) -> int:
    import yaml

    try:
        return len(yaml.safe_load((SPACES_DIR / f"{model}.yaml").read_text())["params"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _parameters(results: str | Path, model: str) -> str:
    for m in sorted((Path(results) / "runs" / tuned(model)).glob("s*/metrics.json")):
        n = json.loads(m.read_text()).get("n_parameters")
        if n:
            return f"{n['trained']:,}"
    return "-"


def budget_table(results: str | Path) -> pd.DataFrame:
    """Per model: trials finished, seeds per trial, the space's size, the chosen trial and its validation MAE,
    and the tuned model's parameter count (from the primary table's records)."""
    best, rows = chosen(results), []
    for model, lab in MODELS.items():
        b = best.get(model)
        t = trials(results, TUNING[model])
        rows.append({"Model": lab, "Trials": len(t) if not t.empty else NOT_YET_RUN,
                     "Seeds per trial": len(b["seeds"]) if b else "-", "Hyperparameters searched": _space_size(model),
                     "Chosen trial": f"t{b['trial']:04d}" if b else "-",
                     f"Validation {PRIMARY.upper()} (chosen)": f"{b[f'valid_{PRIMARY}']:.3f}" if b else "-",
                     "Parameters (tuned)": _parameters(results, model)})
    return pd.DataFrame(rows)


def chosen_table(results: str | Path) -> pd.DataFrame:
    """The chosen values, one row per model and hyperparameter, as ``miar tune --report`` wrote them."""
    rows = []
    for model, b in chosen(results).items():
        for o in b.get("overrides", []):
            key, _, value = o.partition("=")
            try:
                value = f"{float(value):.3g}" if "." in value or "e" in value else value
            except ValueError:
                pass
            rows.append({"Model": MODELS[model], "Hyperparameter": f"`{key}`", "Chosen": value})
    return pd.DataFrame(rows, columns=["Model", "Hyperparameter", "Chosen"])


def search_figure(results: str | Path):
    """Each model's search: every trial's mean validation MAE in the order run, and the best so far."""
    import matplotlib.pyplot as plt

    data = {lab: trials(results, TUNING[m]) for m, lab in MODELS.items()}
    data = {k: v for k, v in data.items() if not v.empty}
    if not data:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.6), constrained_layout=True)
    for lab, t in data.items():
        t = t.sort_values("trial")
        line, = ax.plot(t["trial"], t["valid"].cummin(), lw=1.8, label=lab, drawstyle="steps-post")
        ax.scatter(t["trial"], t["valid"], s=9, color=line.get_color(), alpha=0.45)
    ax.set_xlabel("trial (in the order the search ran it)")
    ax.set_ylabel(f"validation {PRIMARY.upper()} (mean of 2 seeds)")
    ax.set_title("Equal-budget search: each trial (dots) and the best so far (lines)")
    lo = min(float(t["valid"].min()) for t in data.values())
    hi = max(float(t["valid"].quantile(0.9)) for t in data.values())
    ax.set_ylim(lo - 0.01, hi + 0.02)
    ax.legend(fontsize=8, ncol=2)
    return fig


__all__ = ["best_by_validation", "budget_table", "chosen", "chosen_table", "ranked_by_validation", "search_figure",
           "trials"]
