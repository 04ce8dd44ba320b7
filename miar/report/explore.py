"""What ``notebooks/explore.ipynb`` shows for one run record: its metrics, predictions against labels, the
videos and utterances it gets most wrong (with their transcripts when the real data are at hand), error by
utterance length, gate weights and the saved alignment figure. Reads ``results/`` and, only for the
transcripts, ``$MIAR_DATA``; the book's pages never call :func:`transcripts`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from miar.metrics import METRICS
from miar.report.error_analysis import predictions, read_predictions
from miar.report.formatting import fmt, label
from miar.report.io import run_dirs

LENGTH_BINS = (0, 5, 10, 20, 40, 1000)  # words per utterance
LENGTH_LABELS = ("1-5", "6-10", "11-20", "21-40", "41+")


def find_run(results: str | Path, experiment: str, seed: int) -> Path:
    """The complete run record ``results/runs/<experiment>/s<seed>``; a clear error naming what exists."""
    d = Path(results) / "runs" / experiment / f"s{seed}"
    if not (d / "metrics.json").is_file():
        have = [p.name for p in run_dirs(results, experiment)]
        raise FileNotFoundError(f"no complete run record {d} (runs of {experiment!r}: {have or 'none'})")
    return d


def pick_run(results: str | Path, experiment: str, seed: int) -> tuple[str, int, str]:
    """``(experiment, seed, note)``: the requested run when its record exists, else the first complete run of
    the results with a note saying so (a book built before the study's runs exist still shows a run)."""
    if (Path(results) / "runs" / experiment / f"s{seed}" / "metrics.json").is_file():
        return experiment, seed, ""
    have = experiments(results)
    if not have:
        raise FileNotFoundError(f"no run records under {Path(results) / 'runs'} yet")
    first = sorted(have)[0]
    return first, sorted(have[first])[0], (f"`{experiment}` seed {seed} has no run record yet; showing "
                                           f"`{first}` seed {sorted(have[first])[0]} instead. ")


def experiments(results: str | Path) -> dict[str, list[int]]:
    """Experiment -> seeds with a complete run record that kept predictions."""
    out: dict[str, list[int]] = {}
    for d in run_dirs(results):
        if (d / "predictions.csv").is_file() and d.name[1:].isdigit():
            out.setdefault(d.parent.name, []).append(int(d.name[1:]))
    return out


def metrics_table(run: Path) -> pd.DataFrame:
    """Validation and test metrics of one run, in each metric's display scale."""
    m = json.loads((run / "metrics.json").read_text())
    return pd.DataFrame([{"Metric": label(k), **{s.capitalize(): fmt(m.get(s, {}).get(k), k) for s in ("valid", "test")}}
                         for k in METRICS])


def scatter_figure(preds: pd.DataFrame, title: str = ""):
    """Prediction against label, one dot per test utterance, with the diagonal of perfect predictions."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.2), constrained_layout=True)
    ax.scatter(preds["label"], preds["pred"], s=8, alpha=0.5)
    ax.plot([-3, 3], [-3, 3], color="black", lw=0.8)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set(xlim=(-3.2, 3.2), ylim=(-3.2, 3.2), xlabel="label (annotated sentiment)", ylabel="prediction",
           title=title)
    return fig


def run_predictions(run: Path) -> pd.DataFrame:
    df = read_predictions(run)
    df["abs_err"] = (df["pred"] - df["label"]).abs()
    df["err"] = df["pred"] - df["label"]
    return df


def transcripts(root: str | Path | None = None) -> dict[str, str] | None:
    """Utterance id -> transcript from the real CMU-MOSI files (``$MIAR_DATA``); None when they are absent."""
    from miar.data import data_root
    from miar.data.mosi_files import read_mosi

    root = Path(root) if root else data_root()
    if not (root / "CMU-MOSI" / "transcripts.csv").is_file():
        return None
    t = read_mosi(root)
    return dict(zip(t.ids, t.transcripts))


def with_text(df: pd.DataFrame, texts: dict[str, str] | None, width: int = 90) -> pd.DataFrame:
    """``df`` with each utterance's transcript (cut to ``width`` characters) and its length in words."""
    if texts is None:
        return df
    full = df["id"].map(texts).fillna("")
    return df.assign(words=full.str.split().str.len(),
                     transcript=full.map(lambda s: s if len(s) <= width else s[: width - 1] + "…"))


def by_length(preds: pd.DataFrame, texts: dict[str, str]) -> pd.DataFrame:
    """MAE and mean signed error by the utterance's length in words."""
    df = with_text(preds, texts)
    cls = pd.cut(df["words"], LENGTH_BINS, labels=LENGTH_LABELS)
    g = df.groupby(cls, observed=False)
    return pd.DataFrame({"Words": list(LENGTH_LABELS), "Utterances": g.size().to_numpy(),
                         "MAE": g["abs_err"].mean().round(3).to_numpy(), "Mean error": g["err"].mean().round(3).to_numpy()})


def gate_weights(run: Path) -> dict | None:
    return json.loads((run / "metrics.json").read_text()).get("gate_mean_test")


def alignment_figure(run: Path) -> Path | None:
    p = run / "alignment_tokens.png"
    return p if p.is_file() else None


def worst_table(preds: pd.DataFrame, texts: dict[str, str] | None, k: int = 10) -> pd.DataFrame:
    """The ``k`` utterances with the largest absolute error, readable columns, transcripts when given."""
    from miar.report.error_analysis import worst

    w = with_text(worst(preds, k), texts)
    cols = {"id": "Utterance", "label": "Label", "pred": "Prediction", "abs_err": "Absolute error",
            "words": "Words", "transcript": "Transcript"}
    return w[[c for c in cols if c in w]].rename(columns=cols).round(2)


def show_run(results: str | Path, experiment: str, seed: int, texts: dict[str, str] | None = None, k: int = 10):
    """Everything at once for one run (what the notebook's controls redraw): metrics, the scatter, worst utterances."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from miar.report.formatting import md_table, show

    run = find_run(results, experiment, seed)
    preds = run_predictions(run)
    show(f"**`{experiment}`, seed {seed}** (`runs/{experiment}/{run.name}`)\n\n" + md_table(metrics_table(run)))
    fig = scatter_figure(preds, f"{experiment}, seed {seed}")
    display(fig)
    plt.close(fig)
    show(md_table(worst_table(preds, texts, k)))


__all__ = ["alignment_figure", "by_length", "experiments", "find_run", "gate_weights", "metrics_table",
           "predictions", "run_predictions", "scatter_figure", "show_run", "transcripts", "with_text", "worst_table"]
