"""Matplotlib figures for the book: per-seed values with their 95% interval, forest plots of comparisons and
validation curves; :func:`page_setup` sets quiet plotting defaults for the book's kernels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from miar.metrics import summarize_seeds
from miar.report.catalog import LOWER_IS_BETTER, METRIC_INFO, PRIMARY, SECONDARY
from miar.report.compare import Comparison
from miar.report.formatting import label
from miar.report.io import results_dir, run_dirs, seed_values


def page_setup() -> Path:
    """Quiet plotting defaults for the book's kernels; returns the results directory."""
    import logging

    logging.getLogger("matplotlib").setLevel(logging.ERROR)  # e.g. "building the font cache" on stderr
    import matplotlib.pyplot as plt  # the kernel's inline backend shows each cell's figures

    plt.rcParams.update({"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False})
    return results_dir()


COLUMN_PX = 688  # the book's content column at a 1280 px window: figures are drawn at most this wide


def fit_to_column(fig, width_px: int = COLUMN_PX):
    """Shrink ``fig`` (both sides, by one factor) to at most ``width_px`` pixels wide at its dpi, so that it is
    shown at the size it is drawn and its text keeps its point size (a 8 pt label is 12 px at the book's 110 dpi)
    instead of being scaled down by the browser; constrained layout redoes the layout at the new size."""
    w, h = fig.get_size_inches()
    scale = width_px / (w * fig.dpi)
    if scale < 1:
        fig.set_size_inches(w * scale, h * scale)
    return fig


def show_figure(fig, text: str) -> None:
    """Display ``fig`` now, drawn at the content column's width (:func:`fit_to_column`), then close it, so the
    inline backend does not show it twice; its caption under it: what the figure shows and what to see in it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from miar.report.formatting import caption, show

    display(fit_to_column(fig))
    plt.close(fig)
    show(caption(text))


def seed_figure(runs: pd.DataFrame, rows: dict[str, str], metrics=(PRIMARY, SECONDARY)):
    """Per-seed test values (dots) with the mean and Student-t 95% interval (bar), one panel per metric."""
    import matplotlib.pyplot as plt

    rows = {k: v for k, v in rows.items() if seed_values(runs, k, metrics[0]).size}
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 0.45 * len(rows) + 1.5),
                             constrained_layout=True, squeeze=False)
    for ax, m in zip(axes[0], metrics):
        scale = METRIC_INFO[m][1]
        for i, name in enumerate(rows):
            vals = seed_values(runs, name, m) * scale
            if vals.size:
                s = summarize_seeds(vals)
                ax.errorbar(s["mean"], i, xerr=[[s["mean"] - s["ci95"][0]], [s["ci95"][1] - s["mean"]]],
                            fmt="s", color="black", capsize=3, zorder=3)
                ax.scatter(vals, np.full(vals.size, i) + 0.15, s=14, alpha=0.6, color="tab:blue")
        ax.set_yticks(range(len(rows)), list(rows.values()))
        ax.invert_yaxis()
        ax.set_xlabel(label(m) + (" (lower is better)" if m in LOWER_IS_BETTER else ""))
    return fit_to_column(fig)  # shown by the inline backend, without show_figure


def forest_figure(comps: dict[str, Comparison | None], metric_label: str = ""):
    """Gains over the reference with Welch 95% intervals, one row per comparison (None when none ran)."""
    import matplotlib.pyplot as plt

    comps = {k: c for k, c in comps.items() if c is not None and math.isfinite(c.lo)}
    if not comps:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(comps) + 1.5), constrained_layout=True)
    for i, c in enumerate(comps.values()):
        scale = METRIC_INFO.get(c.metric, ("", 1, 3))[1]
        ax.errorbar(c.gain * scale, i, xerr=[[(c.gain - c.lo) * scale], [(c.hi - c.gain) * scale]], fmt="o",
                    capsize=3, color="tab:green" if c.status == "better" else
                    "tab:red" if c.status == "worse" else "grey")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(comps)), list(comps))
    ax.invert_yaxis()
    ax.set_xlabel(metric_label or "gain")
    return fig


def curves_figure(results: str | Path, experiment: str, column: str = "valid_mae"):
    """Validation curves of every seed of an experiment from ``history.csv`` (None when no runs)."""
    import matplotlib.pyplot as plt

    dirs = [d for d in run_dirs(results, experiment) if (d / "history.csv").is_file()]
    if not dirs:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    for d in dirs:
        h = pd.read_csv(d / "history.csv")
        if column in h:
            ax.plot(h["epoch"], h[column], label=d.name, lw=1.2)
        best = json.loads((d / "metrics.json").read_text()).get("best_epoch")
        if best:
            ax.axvline(best, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel(column)
    ax.legend(fontsize=7, ncol=2)
    return fig


def gate_figure(gate: pd.DataFrame):
    """Synthetic runs: the mean gate weight of each modality's token as one stacked bar, beside a stacked bar of
    the generated strengths normalised to sum 1 (the known truth); None without gate weights."""
    import matplotlib.pyplot as plt

    if gate.empty:
        return None
    mods = [t for t, s in zip(gate["Token"], gate["Generated strength"]) if s != "-"]
    g = gate.set_index("Token")
    truth = np.array([float(g.loc[m, "Generated strength"]) for m in mods])
    learned = np.array([float(g.loc[m, "Mean gate weight (test)"]) for m in mods])
    rows = {"generated strength\n(share of the total)": truth / truth.sum(),
            "learned gate weight\n(share of the modality tokens)": learned / learned.sum()}
    fig, ax = plt.subplots(figsize=(7, 2.2), constrained_layout=True)
    for i, (name, shares) in enumerate(rows.items()):
        left = 0.0
        for m, v, c in zip(mods, shares, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
            ax.barh(i, v, left=left, color=c, label=m if i == 0 else None)
            if v > 0.06:
                ax.text(left + v / 2, i, f"{m}\n{v:.2f}", ha="center", va="center", fontsize=8, color="white")
            left += v
    ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share")
    return fig


def encoder_figure(summary: dict, cells: dict[str, dict[str, str]], metric: str = PRIMARY):
    """Grouped dot plot, models x text features: each model's mean test ``metric`` with its Student-t 95%
    interval over seeds, one group per text feature. ``cells``: model label -> {feature label: experiment}.
    None when no cell has results."""
    import matplotlib.pyplot as plt

    features = list(dict.fromkeys(f for row in cells.values() for f in row))
    stats = {(m, f): summary.get(e, {}).get("metrics", {}).get(metric) for m, row in cells.items()
             for f, e in row.items()}
    if not any(s and s.get("mean") is not None for s in stats.values()):
        return None
    scale = METRIC_INFO.get(metric, ("", 1, 3))[1]
    fig, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
    width = 0.7 / max(len(cells), 1)
    for j, model in enumerate(cells):
        for i, feat in enumerate(features):
            s = stats.get((model, feat))
            if not s or s.get("mean") is None:
                continue
            x = i - 0.35 + width * (j + 0.5)
            lo, hi = s["ci95"]
            ax.errorbar(x, s["mean"] * scale, yerr=[[(s["mean"] - lo) * scale], [(hi - s["mean"]) * scale]],
                        fmt="o", capsize=3, color=f"C{j}", label=model if i == 0 else None)
    ax.set_xticks(range(len(features)), features)
    ax.set_ylabel(label(metric) + (" (lower is better)" if metric in LOWER_IS_BETTER else ""))
    ax.set_xlabel("text features")
    ax.legend(frameon=False, fontsize=8)
    return fig


def curves_grid(results: str | Path, experiments: dict[str, str], column: str = "valid_mae", cols: int = 2):
    """Learning curves per model: one small panel per experiment (label -> name), every seed's ``column`` per
    epoch from ``history.csv``, the selected epochs as dotted lines, shared y axis; None when nothing ran."""
    import matplotlib.pyplot as plt

    have = {lab: run_dirs(results, e) for e, lab in experiments.items()}
    have = {lab: [d for d in dirs if (d / "history.csv").is_file()] for lab, dirs in have.items()}
    have = {lab: dirs for lab, dirs in have.items() if dirs}
    if not have:
        return None
    rows = math.ceil(len(have) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.2 * rows), sharey=True, squeeze=False,
                             constrained_layout=True)
    for ax, (lab, dirs) in zip(axes.flat, have.items()):
        for d in dirs:
            h = pd.read_csv(d / "history.csv")
            if column in h:
                ax.plot(h["epoch"], h[column], lw=1.0, alpha=0.8)
            best = json.loads((d / "metrics.json").read_text()).get("best_epoch")
            if best:
                ax.axvline(best, color="grey", lw=0.5, ls=":")
        ax.set_title(lab, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(have):]:
        ax.set_visible(False)
    metric = column.removeprefix("valid_")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"validation {label(metric)}" if metric in METRIC_INFO else column, fontsize=8)
    return fig
