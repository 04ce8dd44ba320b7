"""Error analysis from the run records' ``predictions.csv`` (``id, pred, label``; newer records may add
``video``): which videos and utterances a model gets wrong, by how much, by label intensity, and where two
models disagree. Predictions are averaged over an experiment's seeds per utterance first, so every number
describes the experiment, not one lucky or unlucky seed. The video of an utterance is its id up to the
last ``_`` (``03bSnISJMiM_4`` -> ``03bSnISJMiM``) unless the record names it.

Transcripts are not read here (the book never reads ``$MIAR_DATA``): ``notebooks/explore.ipynb``, executed
against the real data and committed under ``results/explore/``, shows them; :func:`notebook_output`
lets a page quote that executed notebook's tagged outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from miar.report.io import run_dirs

INTENSITY_BINS = (-3.01, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.01)  # the Acc-7 classes: round(label) = -3 ... 3
INTENSITY_LABELS = ("−3", "−2", "−1", "0", "+1", "+2", "+3")


def video_of(ids: pd.Series) -> pd.Series:
    """The video id of each utterance id: everything before the last ``_``."""
    return ids.astype(str).str.rsplit("_", n=1).str[0]


def read_predictions(run_dir: str | Path) -> pd.DataFrame:
    """One run's ``predictions.csv`` with a ``video`` column (the record's own, else derived from ``id``)."""
    df = pd.read_csv(Path(run_dir) / "predictions.csv")
    if "video" not in df:
        df["video"] = video_of(df["id"])
    return df


def predictions(results: str | Path, experiment: str) -> pd.DataFrame:
    """Per test utterance, over the experiment's seeds: video, label, the mean prediction, its spread over
    seeds, the mean absolute error over seeds and the signed error of the mean prediction; empty without runs."""
    runs = [read_predictions(d).assign(run=d.name) for d in run_dirs(results, experiment)
            if (d / "predictions.csv").is_file()]
    cols = ["id", "video", "label", "pred", "pred_std", "abs_err", "err", "seeds"]
    if not runs:
        return pd.DataFrame(columns=cols)
    df = pd.concat(runs, ignore_index=True)
    df["abs_err"] = (df["pred"] - df["label"]).abs()
    g = df.groupby("id", sort=False)
    out = g.agg(video=("video", "first"), label=("label", "first"), pred=("pred", "mean"),
                pred_std=("pred", lambda p: float(np.std(p))), abs_err=("abs_err", "mean"), seeds=("run", "nunique"))
    out["err"] = out["pred"] - out["label"]  # > 0: predicted more positive than the label
    return out.reset_index()[cols]


def per_video(preds: pd.DataFrame) -> pd.DataFrame:
    """Per video: utterances, mean label, MAE (over utterances and seeds), worst utterance's error; worst first."""
    if preds.empty:
        return pd.DataFrame(columns=["video", "utterances", "mean_label", "mae", "max_abs_err"])
    g = preds.groupby("video")
    return (pd.DataFrame({"utterances": g.size(), "mean_label": g["label"].mean(), "mae": g["abs_err"].mean(),
                          "max_abs_err": g["abs_err"].max()})
            .sort_values("mae", ascending=False).reset_index())


def worst(preds: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """The ``k`` utterances with the largest mean absolute error over seeds."""
    return preds.sort_values("abs_err", ascending=False).head(k).reset_index(drop=True)


def by_intensity(preds: pd.DataFrame) -> pd.DataFrame:
    """MAE and mean signed error per rounded label (the Acc-7 classes): where the model is off, and in which
    direction (a negative mean error on strongly positive labels means it under-predicts them)."""
    if preds.empty:
        return pd.DataFrame(columns=["label_class", "utterances", "mae", "mean_err"])
    cls = pd.cut(preds["label"], INTENSITY_BINS, labels=INTENSITY_LABELS)
    g = preds.groupby(cls, observed=False)
    return pd.DataFrame({"label_class": list(INTENSITY_LABELS), "utterances": g.size().to_numpy(),
                         "mae": g["abs_err"].mean().to_numpy(), "mean_err": g["err"].mean().to_numpy()})


def by_position(preds: pd.DataFrame) -> pd.DataFrame:
    """MAE by the utterance's position in its video (the ``k`` of ``<video>_<k>``; 10+ pooled)."""
    if preds.empty:
        return pd.DataFrame(columns=["position", "utterances", "mae"])
    k = pd.to_numeric(preds["id"].astype(str).str.rsplit("_", n=1).str[1], errors="coerce")
    pos = k.clip(upper=10).map(lambda v: "10+" if v >= 10 else str(int(v)) if v == v else "?")
    g = preds.groupby(pos, sort=False)
    order = sorted(g.groups, key=lambda s: (s == "?", int(s.rstrip("+")) if s != "?" else 0))
    return pd.DataFrame({"position": order, "utterances": [len(g.get_group(p)) for p in order],
                         "mae": [g.get_group(p)["abs_err"].mean() for p in order]})


def disagreements(a: pd.DataFrame, b: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """Utterances where two experiments' mean predictions differ most; which of the two is closer to the label."""
    m = a.merge(b, on=["id", "video", "label"], suffixes=("_a", "_b"))
    if m.empty:
        return m
    m["gap"] = (m["pred_a"] - m["pred_b"]).abs()
    m["closer"] = np.where(m["abs_err_a"] < m["abs_err_b"], "a", "b")
    return m.sort_values("gap", ascending=False).head(k).reset_index(drop=True)


def agreement(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """How often two experiments agree on polarity (pred >= 0), and who is closer where they disagree."""
    m = a.merge(b, on=["id", "label"], suffixes=("_a", "_b"))
    if m.empty:
        return {}
    same = (m["pred_a"] >= 0) == (m["pred_b"] >= 0)
    split = m[~same]
    right_a = ((split["pred_a"] >= 0) == (split["label"] >= 0)).sum()
    return {"utterances": len(m), "same_polarity": int(same.sum()), "differ": int((~same).sum()),
            "a_right_when_differ": int(right_a), "b_right_when_differ": int(len(split) - right_a),
            "corr": float(np.corrcoef(m["pred_a"], m["pred_b"])[0, 1]) if len(m) > 1 else float("nan")}


def explore_notebooks(results: str | Path) -> list[Path]:
    """Executed copies of ``notebooks/explore.ipynb`` with the real data (``results/explore/<experiment>.ipynb``;
    kept apart from ``results/notebooks/``, which holds one notebook per run record)."""
    return sorted((Path(results) / "explore").glob("*.ipynb"))


def notebook_output(path: str | Path, tag: str) -> str | None:
    """The markdown (or plain text) a cell tagged ``tag`` displayed in an executed notebook; None if absent."""
    nb = json.loads(Path(path).read_text())
    for cell in nb.get("cells", []):
        if tag in cell.get("metadata", {}).get("tags", []):
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                text = data.get("text/markdown") or data.get("text/plain") or out.get("text")
                if text:
                    return "".join(text) if isinstance(text, list) else text
    return None


def md_frame(text: str) -> tuple[pd.DataFrame, str]:
    """A markdown output that opens with a pipe table (as an executed notebook printed it) as that table's cells,
    all text (an escaped pipe unescaped), and the markdown after it: the book then shows it by its own rules (long texts under the table)."""
    lines = text.strip().splitlines()
    n = next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))
    if n < 2:
        return pd.DataFrame(), text
    cells = [[c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")] for line in lines[:n]]
    return pd.DataFrame(cells[2:], columns=cells[0]), "\n".join(lines[n:]).strip()


def intensity_figure(preds: dict[str, pd.DataFrame]):
    """Per rounded label: MAE (left) and mean signed error (right) of each experiment, bars side by side."""
    import matplotlib.pyplot as plt

    tables = {k: by_intensity(v) for k, v in preds.items() if not v.empty}
    if not tables:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    x = np.arange(len(INTENSITY_LABELS))
    w = 0.8 / len(tables)
    for i, (name, t) in enumerate(tables.items()):
        for ax, col in zip(axes, ("mae", "mean_err")):
            ax.bar(x + (i - (len(tables) - 1) / 2) * w, t[col], w, label=name)
    for ax, ylab in zip(axes, ("MAE", "mean error (prediction − label)")):
        ax.set_xticks(x, INTENSITY_LABELS)
        ax.set_xlabel("label rounded to the nearest integer")
        ax.set_ylabel(ylab)
    axes[1].axhline(0, color="black", lw=0.8)
    axes[0].legend(fontsize=8, frameon=False)
    return fig


def video_figure(preds: dict[str, pd.DataFrame], k: int = 15):
    """MAE per video of each experiment for the ``k`` videos the first experiment gets most wrong."""
    import matplotlib.pyplot as plt

    names = [n for n, v in preds.items() if not v.empty]
    if not names:
        return None
    vids = per_video(preds[names[0]]).head(k)["video"].tolist()
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(vids) + 1.2), constrained_layout=True)
    for name, marker in zip(names, "os^D"):
        pv = per_video(preds[name]).set_index("video").reindex(vids)
        ax.scatter(pv["mae"], range(len(vids)), marker=marker, label=name, s=30)
    ax.set_yticks(range(len(vids)), vids, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MAE over the video's test utterances (mean over seeds)")
    ax.grid(axis="x", lw=0.3, alpha=0.5)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return fig
