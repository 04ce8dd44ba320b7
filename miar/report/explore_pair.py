"""Two models side by side in one setting, for ``notebooks/explore.ipynb``: the experiments grouped by setting
(cross-validation folds hidden unless asked for), each test utterance's error under both models (averaged over
each model's seeds, or one seed), filters by video, label range and transcript text, and the per-video errors.

An experiment name is ``<setting>_<model>`` for the study's settings (``mosi_std_miar+tuned``: setting
``mosi_std``, model ``miar+tuned``), ``<setting>+<model>`` for the synthetic ones (``synth_gap+no_norm``), and a
bare setting is its own base model (``synth_gap``: model ``base``). A fold record ``<experiment>+r<R>f<F>`` is the
model ``<model>+r<R>f<F>`` of its experiment's setting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from miar.pooled import FOLD_DIR
from miar.report.error_analysis import predictions, read_predictions

BASE = "base"  # the model name of a bare setting such as ``synth_gap``
PAIR_COLUMNS = ["id", "video", "label", "pred_a", "pred_b", "abs_err_a", "abs_err_b", "seeds_a", "seeds_b"]


def split_name(experiment: str) -> tuple[str, str]:
    """``(setting, model)`` of an experiment (or fold record) name; see the module docstring."""
    fold = FOLD_DIR.match(experiment)
    name = fold["experiment"] if fold else experiment
    if name.startswith("mosi_") and name.count("_") >= 2:
        setting, model = "_".join(name.split("_")[:2]), "_".join(name.split("_")[2:])
    elif name.startswith("legacy_"):
        setting, model = "legacy", name.removeprefix("legacy_")
    elif "+" in name:
        setting, model = name.split("+", 1)
    else:
        setting, model = name, BASE
    return setting, model + (f"+r{fold['repeat']}f{fold['fold']}" if fold else "")


def experiment_name(setting: str, model: str) -> str:
    """The inverse of :func:`split_name` (fold suffixes included)."""
    fold = FOLD_DIR.match(model)
    base = fold["experiment"] if fold else model
    name = (setting if base == BASE else f"{setting}_{base}" if setting.startswith("mosi_") or setting == "legacy"
            else f"{setting}+{base}")
    return name + (f"+r{fold['repeat']}f{fold['fold']}" if fold else "")


def grouped_experiments(results: str | Path, folds: bool = False) -> dict[str, list[str]]:
    """Setting -> its models with run records that kept predictions, sorted; fold records only when ``folds``."""
    out: dict[str, set[str]] = {}
    for d in sorted(Path(results).glob("runs/*/*/predictions.csv")):
        exp = d.parent.parent.name
        if FOLD_DIR.match(exp) and not folds:
            continue
        setting, model = split_name(exp)
        out.setdefault(setting, set()).add(model)
    return {s: sorted(m) for s, m in sorted(out.items())}


def seeds_of(results: str | Path, experiment: str) -> list[int]:
    """The seeds of an experiment's run records that kept predictions."""
    runs = Path(results) / "runs" / experiment
    return sorted(int(p.parent.name[1:]) for p in runs.glob("s*/predictions.csv") if p.parent.name[1:].isdigit())


def model_predictions(results: str | Path, experiment: str, seed: int = 0) -> pd.DataFrame:
    """Per test utterance of one experiment: label, prediction, absolute error and seeds. ``seed`` 0 averages
    over every seed (mean prediction, mean absolute error); another seed reads that run alone."""
    if seed == 0:
        return predictions(results, experiment)[["id", "video", "label", "pred", "abs_err", "seeds"]]
    run = Path(results) / "runs" / experiment / f"s{seed}"
    if not (run / "predictions.csv").is_file():
        raise FileNotFoundError(f"{run}: no predictions.csv (seeds of {experiment!r}: "
                                f"{seeds_of(results, experiment) or 'none'})")
    df = read_predictions(run)
    return df.assign(abs_err=(df["pred"] - df["label"]).abs(), seeds=1)[
        ["id", "video", "label", "pred", "abs_err", "seeds"]]


def pair_predictions(results: str | Path, setting: str, model_a: str, model_b: str, seed: int = 0) -> pd.DataFrame:
    """Each test utterance both models predicted, side by side (``PAIR_COLUMNS``); a missing model or seed is
    an error naming what the setting has."""
    have = grouped_experiments(results, folds=True).get(setting, [])
    for m in (model_a, model_b):
        if m not in have:
            raise FileNotFoundError(f"no run records of model {m!r} in setting {setting!r} "
                                    f"(models there: {', '.join(have) or 'none'})")
    a = model_predictions(results, experiment_name(setting, model_a), seed)
    b = model_predictions(results, experiment_name(setting, model_b), seed)
    m = a.merge(b.drop(columns="video"), on=["id", "label"], suffixes=("_a", "_b"))
    return m[PAIR_COLUMNS]


def side(df: pd.DataFrame, which: str = "a") -> pd.DataFrame:
    """One model's columns of a pair table as a single model's (``id, video, label, pred, abs_err, err``), for
    :func:`miar.report.explore.worst_table` and :func:`miar.report.explore.by_length`."""
    out = df[["id", "video", "label", f"pred_{which}", f"abs_err_{which}"]].rename(
        columns={f"pred_{which}": "pred", f"abs_err_{which}": "abs_err"})
    return out.assign(err=out["pred"] - out["label"])


def filter_pairs(df: pd.DataFrame, video: str = "", label_min: float = -3.0, label_max: float = 3.0,
                 text: str = "", texts: dict[str, str] | None = None) -> tuple[pd.DataFrame, str]:
    """The rows of one video (exact id, or a prefix), with labels in ``[label_min, label_max]`` and, when
    ``text`` is given and the transcripts are at hand, whose transcript contains it (any case); with the note
    that says which filters applied."""
    keep = df["label"].between(label_min, label_max)
    said = [f"labels in [{label_min:g}, {label_max:g}]"]
    if video:
        keep &= df["video"].astype(str).str.startswith(video)
        said.append(f"video {video!r}")
    if text and texts is None:
        said.append(f"no transcript filter ({text!r} given, but no transcripts: set `data` or $MIAR_DATA)")
    elif text:
        keep &= df["id"].map(texts).fillna("").str.contains(text, case=False, regex=False)
        said.append(f"transcript contains {text!r}")
    out = df[keep].reset_index(drop=True)
    return out, f"{len(out)} of {len(df)} utterances: " + "; ".join(said) + "."


def pair_summary(df: pd.DataFrame, model_a: str, model_b: str) -> pd.DataFrame:
    """One row per model: utterances, seeds, MAE, polarity accuracy (label >= 0), and how often it is closer."""
    rows = []
    for side, name in (("a", model_a), ("b", model_b)):
        other = "b" if side == "a" else "a"
        rows.append({"Model": name, "Utterances": len(df), "Seeds": int(df[f"seeds_{side}"].max()) if len(df) else 0,
                     "MAE": round(float(df[f"abs_err_{side}"].mean()), 3) if len(df) else np.nan,
                     "Polarity right (%)": round(100 * float(((df[f"pred_{side}"] >= 0) == (df["label"] >= 0)).mean()), 1)
                     if len(df) else np.nan,
                     "Closer to the label (%)": round(100 * float((df[f"abs_err_{side}"] < df[f"abs_err_{other}"]).mean()),
                                                      1) if len(df) else np.nan})
    return pd.DataFrame(rows)


def per_video_pair(df: pd.DataFrame) -> pd.DataFrame:
    """Per video: utterances, mean label, each model's MAE and B minus A; the videos where B is worse first."""
    g = df.groupby("video")
    out = pd.DataFrame({"Utterances": g.size(), "Mean label": g["label"].mean(), "MAE A": g["abs_err_a"].mean(),
                        "MAE B": g["abs_err_b"].mean()})
    out["B − A"] = out["MAE B"] - out["MAE A"]
    return out.sort_values("B − A", ascending=False).round(3).reset_index().rename(columns={"video": "Video"})


def utterance_pair_table(df: pd.DataFrame, k: int = 10, texts: dict[str, str] | None = None,
                         width: int = 60) -> pd.DataFrame:
    """The ``k`` utterances where the two models' absolute errors differ most, with transcripts when given."""
    d = df.assign(gap=df["abs_err_b"] - df["abs_err_a"])
    d = d.reindex(d["gap"].abs().sort_values(ascending=False).index).head(k)
    out = pd.DataFrame({"Utterance": d["id"], "Label": d["label"], "A": d["pred_a"], "B": d["pred_b"],
                        "|err| A": d["abs_err_a"], "|err| B": d["abs_err_b"], "B − A": d["gap"]}).round(2)
    if texts is not None:
        full = d["id"].map(texts).fillna("")
        out["Transcript"] = full.map(lambda s: s if len(s) <= width else s[: width - 1] + "…")
    return out.reset_index(drop=True)


def pair_figure(df: pd.DataFrame, model_a: str, model_b: str):
    """Absolute error under model A (x) against model B (y): each test utterance (left) and each video's MAE
    (right); above the diagonal B is worse. Drawn at the book's column width."""
    import matplotlib.pyplot as plt

    from miar.report.figures import fit_to_column

    fig, axes = plt.subplots(1, 2, figsize=(6.2, 3.1), constrained_layout=True)
    videos = df.groupby("video")[["abs_err_a", "abs_err_b"]].mean()
    for ax, data, title in ((axes[0], df, "per utterance"), (axes[1], videos, "per video (MAE)")):
        top = max(float(data[["abs_err_a", "abs_err_b"]].max().max()), 0.1) * 1.05 if len(data) else 1.0
        ax.scatter(data["abs_err_a"], data["abs_err_b"], s=8, alpha=0.5)
        ax.plot([0, top], [0, top], color="black", lw=0.8)
        ax.set(xlim=(0, top), ylim=(0, top), title=title, xlabel=f"|error| of A: {model_a}",
               ylabel=f"|error| of B: {model_b}")
    fit_to_column(fig)
    return fig


def per_seed_table(results: str | Path, setting: str, model_a: str, model_b: str) -> pd.DataFrame:
    """Test MAE of each model per seed (the seeds either model ran), over the utterances both predicted."""
    rows = []
    exps = (experiment_name(setting, model_a), experiment_name(setting, model_b))
    for seed in sorted(set(seeds_of(results, exps[0])) | set(seeds_of(results, exps[1]))):
        row = {"Seed": seed}
        for col, exp in zip(("MAE A", "MAE B"), exps):
            row[col] = (round(float(model_predictions(results, exp, seed)["abs_err"].mean()), 3)
                        if seed in seeds_of(results, exp) else np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=["Seed", "MAE A", "MAE B"])


def show_pair(results, setting: str, model_a: str, model_b: str, seed: int = 0, video: str = "",
              label_range=(-3.0, 3.0), text: str = "", texts: dict[str, str] | None = None, k: int = 10) -> None:
    """Everything at once for one pair (what the notebook's controls redraw): the note, summary, figure and
    the utterances where the two differ most."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from miar.report.formatting import md_table, show

    pairs, note = filter_pairs(pair_predictions(results, setting, model_a, model_b, seed), video, *label_range,
                               text, texts)
    show(f"A = `{experiment_name(setting, model_a)}`, B = `{experiment_name(setting, model_b)}`, "
         f"{'mean over seeds' if seed == 0 else f'seed {seed}'}. {note}\n\n"
         + md_table(pair_summary(pairs, model_a, model_b)))
    if len(pairs):
        fig = pair_figure(pairs, model_a, model_b)
        display(fig)
        plt.close(fig)
        show(md_table(utterance_pair_table(pairs, k, texts)))


def groups_table(groups: dict[str, list[str]], width: int = 4) -> pd.DataFrame:
    """Setting, number of models and the first ``width`` model names (the rest counted), one row per setting
    (four names keep the cell within two lines of the book's column)."""
    def names(models):
        more = f", … ({len(models) - width} more)" if len(models) > width else ""
        return ", ".join(models[:width]) + more

    return pd.DataFrame([{"Setting": s, "Models": len(m), "Names": names(m)} for s, m in groups.items()],
                        columns=["Setting", "Models", "Names"])


def groups_note(results: str | Path, folds: bool) -> str:
    """What the grouping left out: the fold records (hidden unless ``folds``), counted."""
    n = len({d.name for d in (Path(results) / "runs").glob("*") if FOLD_DIR.match(d.name)})
    if folds or not n:
        return f"Every experiment with predictions is listed{f', {n} fold records included' if n else ''}."
    return f"{n} cross-validation fold records are hidden (set `folds = True` to list them)."


def controls(results, groups: dict[str, list[str]], setting: str, model_a: str, model_b: str,
             texts: dict[str, str] | None = None, k: int = 10):
    """ipywidgets controls (JupyterLab) that redraw :func:`show_pair`: setting, both models, seed (0: mean),
    video, label range and transcript text."""
    import ipywidgets as W

    set_w = W.Dropdown(options=list(groups), value=setting, description="setting")
    a_w = W.Dropdown(options=groups[setting], value=model_a, description="model A")
    b_w = W.Dropdown(options=groups[setting], value=model_b, description="model B")

    def on_setting(change):
        a_w.options = b_w.options = groups[change["new"]]

    set_w.observe(on_setting, names="value")
    return W.interact(
        lambda setting, model_a, model_b, seed, video, labels, text: show_pair(
            results, setting, model_a, model_b, seed, video, labels, text, texts, k),
        setting=set_w, model_a=a_w, model_b=b_w, seed=W.IntText(value=0, description="seed (0: mean)"),
        video=W.Text(value="", description="video"), text=W.Text(value="", description="transcript"),
        labels=W.FloatRangeSlider(value=(-3.0, 3.0), min=-3.0, max=3.0, step=0.5, description="labels"))
