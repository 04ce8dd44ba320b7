"""The comparisons ``miar collect`` wrote (``tables/comparisons.csv``, see :mod:`miar.comparisons`), as the
book shows them: the rows of a family, one-line evidence, the power table and the forest plot of claims.

Differences are between single trained models, paired by seed (the ``estimand`` column, :mod:`miar.comparisons`):
the mean over the seeds both sides ran of metric(A, seed) - metric(B, seed), in the metric's units, never a
difference of seed-averaged predictions; the interval shown is the hierarchical one (paired seeds and test videos
resampled), the one the verdicts use."""

from __future__ import annotations

import functools
import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from miar.comparisons import COLUMNS, load_settings
from miar.comparisons import NOT_RUN as NOT_COMPARED
from miar.report.catalog import LOWER_IS_BETTER, METRIC_INFO, PRIMARY
from miar.report.formatting import fmt, label, num
from miar.stats import excludes_zero, significant

VERDICT_COLOURS = {"better": "tab:green", "worse": "tab:red", "equivalent": "tab:blue", "inconclusive": "grey"}


def load_comparisons(results: str | Path) -> pd.DataFrame:
    """``tables/comparisons.csv``; an empty frame with its columns when it does not exist yet."""
    p = Path(results) / "tables" / "comparisons.csv"
    if not p.is_file():
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.read_csv(p, keep_default_na=False, na_values=["", "nan", "NaN"])


def rows_of(comps: pd.DataFrame, family: str, metric: str = PRIMARY, pairs=None) -> pd.DataFrame:
    """The rows of one family on one metric (optionally only the given (A, B) pairs), in file order."""
    if comps.empty:
        return comps
    out = comps[(comps["family"] == family) & (comps["metric"] == metric)]
    if pairs is not None:
        keep = {tuple(p) for p in pairs}
        out = out.loc[pd.Series([(a, b) in keep for a, b in zip(out["a"], out["b"])], index=out.index, dtype=bool)]
    return out


def _scaled(row, key: str) -> float:
    return float(row[key]) * METRIC_INFO.get(row["metric"], ("", 1, 3))[1]


def diff_text(row) -> str:
    """``-0.001 [-0.031, 0.034]`` in the metric's display scale (signed, never "-0.000")."""
    _, _, dec = METRIC_INFO.get(row["metric"], ("", 1, 3))
    if not math.isfinite(float(row["diff"])):
        return "-"
    return (f"{num(_scaled(row, 'diff'), dec, True)} [{num(_scaled(row, 'ci_low_h'), dec, True)}, "
            f"{num(_scaled(row, 'ci_high_h'), dec, True)}]")


@functools.lru_cache(maxsize=1)
def _alpha() -> float:
    """The declared test level (``alpha`` in margins.yaml), read once per process."""
    return load_settings().alpha


def _split_decision(row) -> str:
    """For an inconclusive row where one half of the rule (:func:`miar.stats.decide`: the interval off 0 and the
    Holm-adjusted permutation p below the declared level) holds and the other does not, the half that fell
    short: "p" or "interval"; else ""."""
    lo, hi, p = (float(row[k]) for k in ("ci_low_h", "ci_high_h", "p_holm"))
    if row["verdict"] != "inconclusive" or not all(math.isfinite(x) for x in (lo, hi, p)):
        return ""
    off_zero, sig = excludes_zero(lo, hi), significant(p, _alpha())
    return "p" if off_zero and not sig else "interval" if sig and not off_zero else ""


def verdict_text(row) -> str:
    """``**inconclusive**``, with the reason when one half of the rule alone would look decisive: the interval
    excludes 0 but the Holm-adjusted permutation p is not below the declared level, or the other way round."""
    short = _split_decision(row)
    if short == "p":
        return (f"**inconclusive** (the interval excludes 0, but the Holm-adjusted permutation p is {_p(row['p_holm'])}; "
                "the rule needs both)")
    if short == "interval":
        return (f"**inconclusive** (the Holm-adjusted permutation p is {_p(row['p_holm'])}, but the interval includes "
                "0; the rule needs both)")
    return f"**{row['verdict']}**"


def _why(row) -> str:
    """The short reason beside an evidence line's verdict (its p and interval are on the same line)."""
    return " (the rule needs both the interval off 0 and p below the level)" if _split_decision(row) else ""


def _p(p: float) -> str:
    return "-" if not math.isfinite(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _needed(x: float) -> str:
    if x == math.inf:
        return "no number of seeds (the test set alone is too small)"
    return f"{int(x):,}" if math.isfinite(x) else "-"


def evidence_line(row, names: dict[str, str] | None = None) -> str:
    """One comparison in words: difference, interval, adjusted p, verdict and what the study could detect."""
    names = names or {}
    b = names.get(row["b"], f"`{row['b']}`")
    if row["verdict"] == NOT_COMPARED:
        return f"vs {b}: not run ({row['note']})"
    m = row["metric"]
    direction = "lower is better" if m in LOWER_IS_BETTER else "higher is better"
    return (f"vs {b}: {label(m)} difference {diff_text(row)} ({direction}), Holm-adjusted p {_p(row['p_holm'])}, "
            f"**{row['verdict']}**{_why(row)}; detectable at 80% power: {fmt(row['mdd80'], m)} "
            f"(margin {fmt(row['margin'], m)})")


def comparison_table(rows: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """The rows of :func:`rows_of` as a readable table: A, B, difference and interval, p-values, verdict."""
    names = names or {}
    out = []
    for _, r in rows.iterrows():
        m = r["metric"]
        out.append({"A": names.get(r["a"], f"`{r['a']}`"), "B": names.get(r["b"], f"`{r['b']}`"),
                    f"{label(m)}: A - B [95% interval]": diff_text(r),
                    "p (Holm)": _p(r["p_holm"]), "Equivalence p (Holm)": _p(r["p_tost_holm"]),
                    "Verdict": r["verdict"]})
    return pd.DataFrame(out)


def power_table(comps: pd.DataFrame, families=None, metric: str = PRIMARY,
                names: dict[str, str] | None = None) -> pd.DataFrame:
    """Per comparison: the minimum detectable difference at 80% power, the margin, and the seeds or test
    videos that would bring the detectable difference down to the margin."""
    names = names or {}
    sub = comps[(comps["metric"] == metric) & (comps["verdict"] != NOT_COMPARED)] if not comps.empty else comps
    if families is not None and not sub.empty:
        sub = sub[sub["family"].isin(list(families))]
    out = []
    for _, r in sub.iterrows():
        out.append({"Family": r["family"], "A vs B": f"{names.get(r['a'], r['a'])} vs {names.get(r['b'], r['b'])}",
                    "Seeds (paired)": int(r["n_seeds_a"]), "Test videos": int(r["n_videos"]),
                    "Detectable (80% power)": fmt(r["mdd80"], metric), "Margin": fmt(r["margin"], metric),
                    "Seeds needed": _needed(float(r["seeds_needed"])),
                    "Test videos needed": _needed(float(r["videos_needed"]))})
    return pd.DataFrame(out)


def forest(rows: pd.DataFrame, labels: list[str], title: str = ""):
    """Forest plot: each comparison's difference with its hierarchical 95% interval, the equivalence band
    (+-margin) shaded, the marker coloured by verdict; None when no row has a finite interval."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    keep = [i for i, (_, r) in enumerate(rows.iterrows()) if math.isfinite(float(r["ci_low_h"]))]
    if not keep:
        return None
    # drawn at the book's column width (6.25 in at 110 dpi = 688 px); long labels wrap (three lines at most)
    rows, labels = rows.iloc[keep], [textwrap.fill(labels[i], 46, max_lines=3) for i in keep]
    m = rows["metric"].iloc[0]
    scale = METRIC_INFO.get(m, ("", 1, 3))[1]
    per_row = 0.12 + 0.15 * max(t.count("\n") + 1 for t in labels)  # inches
    fig, ax = plt.subplots(figsize=(6.25, per_row * len(rows) + 1.6), constrained_layout=True)
    margin = float(rows["margin"].max()) * scale
    ax.axvspan(-margin, margin, color="tab:blue", alpha=0.12, lw=0)
    ax.axvline(0, color="black", lw=0.8)
    for i, (_, r) in enumerate(rows.iterrows()):
        d, lo, hi = (_scaled(r, k) for k in ("diff", "ci_low_h", "ci_high_h"))
        ax.errorbar(d, i, xerr=[[d - lo], [hi - d]], fmt="o", capsize=3, color=VERDICT_COLOURS.get(r["verdict"], "k"))
    ax.set_yticks(np.arange(len(rows)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # long labels leave the axis narrow: few ticks, no overlap
    better = "left" if m in LOWER_IS_BETTER else "right"
    ax.set_xlabel(f"{label(m)}: A - B ({better} of 0: A better)")
    handles = [Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="tab:blue", alpha=0.12, label="equivalence margin"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=8)  # within the width
    if title:
        ax.set_title(textwrap.fill(title, 64), fontsize=10)  # within the column width
    return fig


def margins_table() -> pd.DataFrame:
    """The declared equivalence margins (``miar/experiments/margins.yaml``) with the argument for each."""
    st = load_settings()
    return pd.DataFrame([{"Metric": label(m), "Margin": fmt(v, m), "Why this margin": st.why[m]}
                         for m, v in st.margins.items()])


def settings_sentence() -> str:
    """The declared test level, power target, resamples and seed, in one sentence (from margins.yaml)."""
    st = load_settings()
    return (f"Level {st.alpha:g} after Holm's correction, power target {st.power:.0%}, {st.resamples:,} resamples "
            f"for each bootstrap and for the permutation test, resampling seed {st.seed}.")


def margins_history() -> pd.DataFrame:
    """Every commit that touched ``miar/experiments/margins.yaml`` (date, commit, subject): a margin changed
    after the results were seen shows here. Empty outside a git checkout."""
    import subprocess

    from miar.report.io import repo_root

    root = repo_root()
    try:
        out = subprocess.run(["git", "log", "--format=%ad%x09%h%x09%s", "--date=short", "--",
                              "miar/experiments/margins.yaml"], cwd=root, capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.SubprocessError):
        return pd.DataFrame(columns=["Date", "Commit", "Change"])
    rows = [line.split("\t", 2) for line in out.stdout.splitlines() if line.count("\t") >= 2]
    return pd.DataFrame([{"Date": d, "Commit": f"`{h}`", "Change": s[:160]} for d, h, s in rows],
                        columns=["Date", "Commit", "Change"])


CALIBRATION_ROWS = {"null_utterance_noise": "No difference; seeds differ utterance by utterance",
                    "null_seed_offsets": "No difference; each seed also shifts all its predictions",
                    "effect": "A real difference"}
CALIBRATION_COLUMNS = {"permutation_p_below_0.05": "Permutation p < 0.05",
                       "video_interval_excludes_0": "Video interval excludes 0",
                       "hierarchical_interval_excludes_0": "Hierarchical interval excludes 0",
                       "verdict_better_or_worse": "Verdict: better or worse"}


def calibration_table(results: str | Path) -> pd.DataFrame:
    """``stats/calibration.json`` (``scripts/calibrate_stats.py``): how often each test fires, per simulated
    scenario (in percent); empty when the file does not exist."""
    import json

    p = Path(results) / "stats" / "calibration.json"
    if not p.is_file():
        return pd.DataFrame()
    data = json.loads(p.read_text())
    out = []
    for key, what in CALIBRATION_ROWS.items():
        r = data["results"].get(key)
        if r:
            out.append({"Simulated truth": what, "Mean MAE difference": num(r["mean_mae_difference"], 3, True),
                        **{lab: f"{100 * r[k]:.1f}%" for k, lab in CALIBRATION_COLUMNS.items()}})
    return pd.DataFrame(out)


def oriented(rows: pd.DataFrame, reference: str) -> pd.DataFrame:
    """The rows turned so that ``reference`` is always B (A - reference): where it was A, the sides swap, the
    difference and its intervals change sign and "better" / "worse" swap. For ablation tables and plots that
    read "variant - MIAR" whichever side the family file put MIAR on."""
    out = rows.copy()
    flip = out["a"] == reference
    out.loc[flip, ["a", "b"]] = out.loc[flip, ["b", "a"]].to_numpy()
    for lo, hi in (("ci_low", "ci_high"), ("ci_low_h", "ci_high_h")):
        out.loc[flip, [lo, hi]] = -out.loc[flip, [hi, lo]].to_numpy(float)
    out.loc[flip, "diff"] = -out.loc[flip, "diff"].astype(float)
    swap = {"better": "worse", "worse": "better"}
    out.loc[flip, "verdict"] = out.loc[flip, "verdict"].map(lambda v: swap.get(v, v))
    return out
