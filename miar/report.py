"""Build-time helpers for the book and the README: they read ``results/`` and never train.

Every number the book shows comes from a function here reading the files ``miar collect`` and the run records
leave behind (``summary.json``, ``tables/runs.csv``, ``runs/<experiment>/<run>/*``, ``bench/*.json``); the
only numbers written in this file are the published anchors (``ANCHORS_BC``, ``ANCHORS_STD``), each with its
source and protocol, and they never share a column with ours.
Missing results are not an error: tables show "not yet run" and the book says so.

Seeds: ours are mean +- population std (ddof 0, as MMSA reports) with the Student-t 95% interval of the mean
(:func:`miar.metrics.summarize_seeds`). A comparison of two experiments is the difference of their seed means
with a Welch 95% interval; it is "better" / "worse" only when that interval excludes 0 (:func:`compare`).

``python -m miar.report readme [README.md] [results]`` rewrites the README's results block.
As a Sphinx extension (``_config.yml``: ``extra_extensions: [miar.report]``) it makes every page depend on
``results/``, so an incremental build re-executes all pages when any result changed (:func:`setup`).
"""

from __future__ import annotations

import ast
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from miar.metrics import METRICS, summarize_seeds

RESULTS_ENV = "MIAR_RESULTS"  # overrides the results directory the book reads (tests use it)
MAIN = "mosi_bc_miar"
PRIMARY = "mae"  # the metric the verdicts use: the trained objective and the selection criterion
SECONDARY = "non0_acc2"
RERUN = "miar sweep study && miar collect"
ALIGN_RERUN = "miar align <experiment> (papermill runs notebooks/alignment.ipynb over its runs with model.pt)"
NOT_RUN = "not yet run"
METRIC_INFO = {  # label, display scale, decimals (accuracies and F1 in percent, as the field reports them)
    "has0_acc2": ("Has0 Acc-2", 100, 2), "has0_f1": ("Has0 F1", 100, 2),
    "non0_acc2": ("Non0 Acc-2", 100, 2), "non0_f1": ("Non0 F1", 100, 2),
    "acc5": ("Acc-5", 100, 2), "acc7": ("Acc-7", 100, 2), "mae": ("MAE", 1, 3), "corr": ("Corr", 1, 3),
    "has0_macro_f1": ("Has0 macro-F1", 100, 2), "modality_gap": ("Modality gap", 1, 3),
}
LOWER_IS_BETTER = {"mae", "modality_gap"}
BASELINES = {  # experiment -> label: every model of the main table, same data, split and protocol
    "mosi_bc_text_only": "Text only", "mosi_bc_early_fusion": "Early fusion",
    "mosi_bc_late_fusion": "Late fusion", "mosi_bc_bclstm": "bc-LSTM (ours)",
    "mosi_bc_mult": "MulT (ours)", "mosi_bc_misa": "MISA (ours)",
}
MAIN_TABLE = {MAIN: "MIAR (ours)", **BASELINES}
STD_TABLE = {n.replace("mosi_bc_", "mosi_std_"): lab for n, lab in MAIN_TABLE.items()}  # standard split
ABLATIONS = {  # variant of MAIN -> what it changes (the study sweep holds the exact overrides)
    "no_contrastive": "no contrastive term", "no_interaction": "no feature interaction (pooled tokens)",
    "no_norm": "no normalization after projection", "batchnorm": "batch norm instead of layer norm",
    "h2": "token scheme H2 (directed, MulT-like)", "h3": "token scheme H3 (one joint masked transformer)",
    "tokens3": "three tokens (no fused token)", "weight0.03": "smaller contrastive weight",
    "weight0.3": "larger contrastive weight", "weight1": "much larger contrastive weight",
    "learnable_temp": "learnable temperature", "supcon": "supervised contrastive (polarity positives)",
    "context0": "no neighbouring utterances", "context8": "a wider window of neighbouring utterances",
    "gate": "learned gate over the tokens",
}
SYNTH = "synth_shift"  # synthetic data with known modality shifts and strengths (the alignment chapter)
SYNTH_VARIANTS = {"no_contrastive": "no contrastive term", "no_norm": "no normalization",
                  "no_align": "neither contrastive term nor normalization"}
ENCODERS = {"cnn": "released CNN (100-d)", "minilm": "all-MiniLM-L6-v2 (384-d)",
            "mpnet": "all-mpnet-base-v2 (768-d)", "static": "static Model2Vec-style (64-d)"}


# ----------------------------------------------------------------------------- published anchors

@dataclass(frozen=True)
class Anchor:
    """One published number, in the publication's scale (percent for accuracies)."""

    system: str
    modalities: str
    metric: str  # our metric key it corresponds to
    value: float
    runs: str
    source: str
    protocol: str
    ours: str | None  # the experiment of ours to set beside it ("majority": computed from our test labels)


_BC = "bc split, test-set selection"
ANCHORS_BC = (  # REFERENCE.md section 4; binary label = score >= 0, i.e. our has0 convention
    Anchor("Majority class", "-", "has0_acc2", 62.10, "-", "467 / 752 test labels >= 0", "bc split",
           "majority"),
    Anchor("bc-LSTM (Poria et al., ACL 2017)", "T", "has0_acc2", 78.12, "1", "paper, tables 3-4", _BC,
           "mosi_bc_text_only"),
    Anchor("bc-LSTM (Poria et al., ACL 2017)", "A", "has0_acc2", 60.31, "1", "paper, tables 3-4", _BC, None),
    Anchor("bc-LSTM (Poria et al., ACL 2017)", "V", "has0_acc2", 55.80, "1", "paper, tables 3-4", _BC, None),
    Anchor("bc-LSTM (Poria et al., ACL 2017)", "T+A+V", "has0_acc2", 80.30, "1", "paper", _BC, "mosi_bc_bclstm"),
    Anchor("CATF-LSTM (Poria et al., ICDM 2017)", "T+A+V", "has0_macro_f1", 81.3, "1", "paper", _BC, MAIN),
    Anchor("MMMU-BA (Ghosal et al., EMNLP 2018)", "T+A+V", "has0_acc2", 82.31, "mean of 5", "paper", _BC, MAIN),
    Anchor("MMMU-BA (Ghosal et al., EMNLP 2018)", "T+A+V", "has0_macro_f1", 81.12, "mean of 5", "paper", _BC,
           MAIN),
    Anchor("Kumar & Vepa (ICASSP 2020)", "T+A+V", "has0_acc2", 83.91, "?", "secondary listing only", _BC, MAIN),
)
_STD = "standard split, aligned BERT features, seeds 1111-1115"
ANCHORS_STD = tuple(  # MMSA framework's results table, standard MOSI split (REFERENCE.md section 4)
    Anchor(system, "T+A+V", metric, value, "mean of 5", "MMSA results table", _STD, ours)
    for system, ours, values in (
        ("MISA (MMSA)", "mosi_std_misa", (81.84, 83.54, 41.37, 0.777, 0.778)),
        ("Self-MM (MMSA)", None, (83.44, 85.46, 46.67, 0.708, 0.796)),
        ("MulT (MMSA)", "mosi_std_mult", (79.71, 80.98, 36.91, 0.880, 0.702)))
    for metric, value in zip(("has0_acc2", "non0_acc2", "acc7", "mae", "corr"), values))


# ----------------------------------------------------------------------------- locating and reading results

def repo_root(start: str | Path | None = None) -> Path:
    """The book root: the first directory upwards from ``start`` (default: cwd) with ``_config.yml`` and ``miar/``."""
    here = Path(start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "_config.yml").is_file() and (p / "miar").is_dir():
            return p
    return Path(__file__).resolve().parents[1]


def results_dir(path: str | Path | None = None) -> Path:
    """``path``, else ``$MIAR_RESULTS``, else ``<repo root>/results``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(RESULTS_ENV) or repo_root() / "results")


def load_summary(results: str | Path) -> dict[str, dict]:
    """``summary.json``'s experiments (name -> {"n_seeds", "metrics"}); {} when it does not exist yet."""
    p = Path(results) / "summary.json"
    if not p.is_file():
        return {}
    data = json.loads(p.read_text())
    if data.get("schema_version") != 1:
        raise ValueError(f"{p}: schema_version {data.get('schema_version')!r}, this book reads 1")
    return data.get("experiments", {})


def load_runs(results: str | Path) -> pd.DataFrame:
    """``tables/runs.csv`` (one row per run); an empty frame when it does not exist yet."""
    p = Path(results) / "tables" / "runs.csv"
    if not p.is_file():
        return pd.DataFrame(columns=["experiment", "run", "seed", *(f"test_{m}" for m in METRICS)])
    return pd.read_csv(p)


def run_dirs(results: str | Path, experiment: str | None = None) -> list[Path]:
    """Complete run records (those with ``metrics.json``), sorted; of one experiment if given."""
    pattern = f"{experiment}/*/metrics.json" if experiment else "*/*/metrics.json"
    return sorted(p.parent for p in (Path(results) / "runs").glob(pattern))


def seed_values(runs: pd.DataFrame, experiment: str, metric: str) -> np.ndarray:
    """The finite per-seed test values of ``metric`` for ``experiment`` from runs.csv."""
    col = f"test_{metric}"
    if runs.empty or col not in runs:
        return np.array([])
    v = pd.to_numeric(runs.loc[runs["experiment"] == experiment, col], errors="coerce").to_numpy(float)
    return v[np.isfinite(v)]


def prediction_metric(results: str | Path, experiment: str, metric: str) -> dict | None:
    """``summarize_seeds`` of a metric computed from each run's ``predictions.csv``: ``has0_macro_f1``
    (the macro-F1 of the older bc-split papers) or ``majority`` (share of test labels >= 0)."""
    from sklearn.metrics import f1_score

    values = []
    for d in run_dirs(results, experiment):
        pred = pd.read_csv(d / "predictions.csv")
        y, p = pred["label"].to_numpy(float) >= 0, pred["pred"].to_numpy(float) >= 0
        values.append(float(np.mean(y)) if metric == "majority" else
                      float(f1_score(y, p, average="macro", zero_division=0)))
    return summarize_seeds(values) if values else None


# ----------------------------------------------------------------------------- formatting

def fmt(value, metric: str) -> str:
    """One value in the metric's display scale ("-" for missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    _, scale, dec = METRIC_INFO.get(metric, (metric, 1, 3))
    return f"{value * scale:.{dec}f}"


def fmt_stats(stats: dict | None, metric: str, n: bool = False) -> str:
    """``mean ± std`` (and `` (n=k)``) of a summarize_seeds-like dict; "not yet run" when missing."""
    if not stats or stats.get("mean") is None:
        return NOT_RUN
    out = f"{fmt(stats['mean'], metric)} ± {fmt(stats['std'], metric)}"
    return f"{out} (n={stats['n']})" if n and "n" in stats else out


def fmt_ci(stats: dict | None, metric: str) -> str:
    if not stats or stats.get("mean") is None:
        return NOT_RUN
    lo, hi = stats["ci95"]
    return f"[{fmt(lo, metric)}, {fmt(hi, metric)}]"


def label(metric: str) -> str:
    name, scale, _ = METRIC_INFO.get(metric, (metric, 1, 3))
    return f"{name} (%)" if scale == 100 else name


def md_table(df: pd.DataFrame, index: bool = False) -> str:
    """A GitHub/MyST pipe table of ``df`` (cells as text; pipes escaped)."""
    if index:
        df = df.reset_index()
    def cell(v) -> str:
        if isinstance(v, float) and math.isfinite(v):
            v = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def not_yet_run(what: str, command: str = RERUN) -> str:
    """A MyST admonition saying plainly that ``what`` has no results yet, and the command that makes them."""
    return (f":::{{admonition}} Not yet run\n:class: warning\n{what}: {NOT_RUN}.\n"
            f"`{command}` writes the results this page reads; rebuild the book afterwards.\n:::")


def show(text: str) -> None:
    """Display MyST markdown from a code cell (the book renders it as part of the page)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def page_setup() -> Path:
    """Quiet plotting defaults for the book's kernels; returns the results directory."""
    import logging

    logging.getLogger("matplotlib").setLevel(logging.ERROR)  # e.g. "building the font cache" on stderr
    import matplotlib.pyplot as plt  # the kernel's inline backend shows each cell's figures

    plt.rcParams.update({"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False})
    return results_dir()


# ----------------------------------------------------------------------------- our tables

def summary_frame(summary: dict, names=None, metrics=METRICS) -> pd.DataFrame:
    """Long numeric frame: experiment, metric, mean, std, ci_low, ci_high, n_seeds (present experiments only)."""
    rows = []
    for name in names if names is not None else sorted(summary):
        for m in metrics:
            s = summary.get(name, {}).get("metrics", {}).get(m)
            if s is not None:
                lo, hi = s["ci95"]
                rows.append({"experiment": name, "metric": m, "mean": s["mean"], "std": s["std"],
                             "ci_low": lo, "ci_high": hi, "n_seeds": summary[name]["n_seeds"]})
    return pd.DataFrame(rows, columns=["experiment", "metric", "mean", "std", "ci_low", "ci_high", "n_seeds"])


def stats_of(summary: dict, name: str, metric: str) -> dict | None:
    e = summary.get(name)
    s = e and e["metrics"].get(metric)
    return {**s, "n": e["n_seeds"]} if s and s.get("mean") is not None else None


HEADLINE = ("has0_acc2", "non0_acc2", "non0_f1", "acc7", "mae", "corr")  # the columns of the main tables


def results_table(summary: dict, rows: dict[str, str], metrics=METRICS, ci: bool = False) -> pd.DataFrame:
    """Rows = experiments (label -> mean ± std, or the 95% CI with ``ci``); a missing experiment's Seeds cell
    reads "not yet run" and its metric cells "-"."""
    out = []
    for name, lab in rows.items():
        n = summary.get(name, {}).get("n_seeds")
        row = {"Model": lab, "Experiment": f"`{name}`", "Seeds": n if n else NOT_RUN}
        for m in metrics:
            s = stats_of(summary, name, m)
            row[label(m)] = "-" if s is None else fmt_ci(s, m) if ci else fmt_stats(s, m)
        out.append(row)
    return pd.DataFrame(out)


def anchor_table(summary: dict, results: str | Path, anchors=ANCHORS_BC) -> pd.DataFrame:
    """Published anchors and ours side by side, never in one column: the published value with its runs, source
    and protocol; ours as mean ± std over seeds with n, the 95% CI, the difference and where the anchor falls."""
    out = []
    for a in anchors:
        if a.ours == "majority":
            s = prediction_metric(results, MAIN, "majority")
            name = "test labels of our runs"
        elif a.ours is None:
            s, name = None, "(no matching experiment)"
        else:
            name = f"`{a.ours}`"
            s = (prediction_metric(results, a.ours, a.metric) if a.metric == "has0_macro_f1"
                 else stats_of(summary, a.ours, a.metric))
        scale, dec = METRIC_INFO[a.metric][1], METRIC_INFO[a.metric][2]
        reading = NOT_RUN if a.ours else "not compared"
        if s is not None:
            lo, hi = (v * scale for v in s["ci95"])
            where = "ours above" if lo > a.value else "ours below" if hi < a.value else "inside our CI"
            reading = f"{s['mean'] * scale - a.value:+.{dec}f} ({where})"
        out.append({"System (published)": f"{a.system}, {a.modalities}", "Metric": label(a.metric),
                    "Published (runs)": f"{a.value:g} ({a.runs})", "Source": a.source, "Protocol": a.protocol,
                    "Ours: experiment": name,
                    "Ours: mean ± std (n)": fmt_stats(s, a.metric, n=True) if a.ours else "-",
                    "Ours: 95% CI": fmt_ci(s, a.metric) if a.ours else "-",
                    "Ours − published": reading})
    return pd.DataFrame(out)


def present(summary: dict, names) -> list[str]:
    return [n for n in names if n in summary]


def planned() -> dict[str, list[str]]:
    """The experiments this book reads, by chapter."""
    return {"main table (bc split)": list(MAIN_TABLE),
            "ablations": [f"{MAIN}+{v}" for v in ABLATIONS],
            "text encoders": [f"{MAIN}+{e}" for e in ENCODERS if e != "cnn"]
            + [f"mosi_bc_text_only+{e}" for e in ENCODERS if e != "cnn"],
            "standard split (context)": list(STD_TABLE),
            "synthetic (known truth)": [SYNTH, *(f"{SYNTH}+{v}" for v in SYNTH_VARIANTS)]}


def status_table(summary: dict) -> pd.DataFrame:
    """Per chapter: how many planned experiments have results, and which are missing."""
    rows = []
    for group, names in planned().items():
        missing = [n for n in names if n not in summary]
        rows.append({"Experiments": group, "With results": f"{len(names) - len(missing)} of {len(names)}",
                     "Not yet run": ", ".join(f"`{n}`" for n in missing) or "-"})
    extra = sorted(set(summary) - {n for names in planned().values() for n in names})
    if extra:
        rows.append({"Experiments": "others in the results", "With results": str(len(extra)),
                     "Not yet run": "-"})
    return pd.DataFrame(rows)


def gate_table(results: str | Path, experiment: str) -> pd.DataFrame:
    """Mean gate weight per token on the test split (``metrics.json`` ``gate_mean_test``), one row per run."""
    rows = []
    for d in run_dirs(results, experiment):
        gate = json.loads((d / "metrics.json").read_text()).get("gate_mean_test")
        if gate:
            rows.append({"run": d.name, **gate})
    df = pd.DataFrame(rows)
    if not df.empty:
        df.loc[len(df)] = {"run": "mean", **df.drop(columns="run").mean().to_dict()}
    return df


def variants(summary: dict, base: str = MAIN) -> list[str]:
    """Experiments ``<base>+<variant>`` in the results, in ABLATIONS order, then any others."""
    found = [n for n in summary if n.startswith(base + "+")]
    order = {f"{base}+{v}": i for i, v in enumerate([*ABLATIONS, *ENCODERS])}
    return sorted(found, key=lambda n: (order.get(n, len(order)), n))


def ablation_names(summary: dict, overrides: dict[str, list[str]], base: str = MAIN) -> list[str]:
    """Ablation variants of ``base`` (text encoders excluded): ABLATIONS, then any others in the study
    sweep or in the results, in that order."""
    extra = [n.split("+", 1)[1] for n in [*overrides, *summary] if n.startswith(base + "+")]
    return list(dict.fromkeys(v for v in [*ABLATIONS, *extra] if v not in ENCODERS))


# ----------------------------------------------------------------------------- comparisons and verdicts

@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b`` on ``metric``: ``gain`` is how much better a is (sign flipped for lower-is-better)."""

    a: str
    b: str
    metric: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    gain: float
    lo: float  # Welch 95% interval of the gain (nan with fewer than 2 seeds on a side)
    hi: float

    @property
    def status(self) -> str:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            return "too few seeds"
        return "better" if self.lo > 0 else "worse" if self.hi < 0 else "no detectable difference"

    def gain_text(self) -> str:
        """``gain [lo, hi]`` in the metric's display scale."""
        ci = f" [{fmt(self.lo, self.metric)}, {fmt(self.hi, self.metric)}]" if math.isfinite(self.lo) else ""
        return f"{fmt(self.gain, self.metric)}{ci}"

    def text(self) -> str:
        m = self.metric
        gain = "gain" if m not in LOWER_IS_BETTER else "reduction"
        ci = f" [{fmt(self.lo, m)}, {fmt(self.hi, m)}]" if math.isfinite(self.lo) else ""
        return (f"{label(m)} {fmt(self.mean_a, m)} vs {fmt(self.mean_b, m)}; {gain} {fmt(self.gain, m)}{ci} "
                f"({self.n_a} vs {self.n_b} seeds)")


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Difference of means a - b and its Welch 95% interval (nan interval with < 2 values on a side)."""
    from scipy.stats import t

    diff = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan, math.nan
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(t.ppf(0.975, df)) * se
    return diff, diff - half, diff + half


def compare_values(a: str, b: str, metric: str, va, vb) -> Comparison | None:
    va, vb = np.asarray(va, float), np.asarray(vb, float)
    if va.size == 0 or vb.size == 0:
        return None
    diff, lo, hi = welch(va, vb)
    if metric in LOWER_IS_BETTER:
        diff, lo, hi = -diff, -hi, -lo
    return Comparison(a, b, metric, va.size, vb.size, float(va.mean()), float(vb.mean()), diff, lo, hi)


def compare(runs: pd.DataFrame, a: str, b: str, metric: str = PRIMARY) -> Comparison | None:
    """``a`` vs ``b`` on the per-seed test values of runs.csv; None when either has no runs."""
    return compare_values(a, b, metric, seed_values(runs, a, metric), seed_values(runs, b, metric))


def comparison_table(comps: dict[str, Comparison | None]) -> pd.DataFrame:
    """One row per labelled comparison: the means, the gain with its interval, and the reading."""
    return pd.DataFrame([{"Comparison": lab, "Result": c.text() if c else NOT_RUN,
                          "Reading": c.status if c else NOT_RUN} for lab, c in comps.items()])


@dataclass(frozen=True)
class Claim:
    key: str
    text: str  # what the abstract claims, in our words
    test: str  # how this study tests it
    page: str  # the chapter with the evidence
    main: bool  # decides the [Re] / [¬Re] title


CLAIMS = (
    Claim("sota", "MIAR outperforms state-of-the-art methods on CMU-MOSI",
          f"MIAR vs every baseline we run under the same protocol ({label(PRIMARY)}); published bc-split numbers "
          "beside ours", "results", True),
    Claim("interaction", "Feature interaction (the feature tokens) improves sentiment prediction",
          "MIAR vs `+no_interaction`", "ablations", True),
    Claim("contrastive", "Contrastive alignment improves sentiment prediction",
          "MIAR vs `+no_contrastive`", "ablations", True),
    Claim("normalization", "Normalization strategies improve sentiment prediction", "MIAR vs `+no_norm`",
          "ablations", False),
    Claim("alignment", "Alignment reduces the distribution differences between modalities",
          "modality gap of the tokens, MIAR vs `+no_contrastive`, on CMU-MOSI and on synthetic data with a "
          "known shift", "alignment", False),
    Claim("unequal", "Modelling the unequal contributions of the modalities helps", "`+gate` vs MIAR",
          "ablations", False),
    Claim("text_generalization", "MIAR generalizes across different text-model features",
          "MIAR vs the text-only baseline with each text encoder", "encoders", True),
    Claim("mosei", "The gains hold on CMU-MOSEI", "no CMU-MOSEI data is available here", "method", False),
)


def _combine(comps: list[Comparison | None]) -> tuple[str, str]:
    """Verdict of "a beats every b": supported / contradicted / not supported / not yet run."""
    done = [c for c in comps if c is not None]
    if not done:
        return NOT_RUN, "no runs for this comparison"
    detail = "; ".join(f"vs `{c.b}`: {c.text()}, {c.status}" for c in done)
    if any(c.status == "too few seeds" for c in done):
        return "inconclusive", detail
    if any(c.status == "worse" for c in done):
        return "contradicted", detail
    if len(done) < len(comps):
        return NOT_RUN, detail + f"; {len(comps) - len(done)} comparison(s) not yet run"
    return ("supported" if all(c.status == "better" for c in done) else "not supported"), detail


def verdicts(results: str | Path) -> list[dict]:
    """One row per claim of ``CLAIMS``: the claim, how it is tested, the verdict and its evidence."""
    summary, runs = load_summary(results), load_runs(results)
    v = lambda name: f"{MAIN}+{name}"  # noqa: E731
    align = alignment_frame(results)
    gap = lambda e: align.loc[(align["experiment"] == e) & (align["kind"] == "tokens"), "modality_gap"]  # noqa
    pairs = [(MAIN, "mosi_bc_text_only")] + [(v(e), f"mosi_bc_text_only+{e}") for e in ENCODERS if e != "cnn"]
    pairs = [p for p in pairs if p[0] in summary or p == pairs[0]]
    found = {
        "sota": _combine([compare(runs, MAIN, b) for b in BASELINES]),
        "interaction": _combine([compare(runs, MAIN, v("no_interaction"))]),
        "contrastive": _combine([compare(runs, MAIN, v("no_contrastive"))]),
        "normalization": _combine([compare(runs, MAIN, v("no_norm"))]),
        "alignment": _combine([compare_values(a, b, "modality_gap", gap(a).dropna(), gap(b).dropna())
                               for a, b in ((MAIN, v("no_contrastive")), (SYNTH, f"{SYNTH}+no_contrastive"))]),
        "unequal": _combine([compare(runs, v("gate"), MAIN)]),
        "text_generalization": _combine([compare(runs, a, b) for a, b in pairs]),
        "mosei": ("not testable", "no CMU-MOSEI features are available to this study"),
    }
    if len(pairs) < 2 and found["text_generalization"][0] != "contradicted":
        found["text_generalization"] = (NOT_RUN, found["text_generalization"][1] + "; needs a second encoder")
    return [{"claim": c.key, "text": c.text, "test": c.test, "page": c.page, "main": c.main,
             "verdict": found[c.key][0], "detail": found[c.key][1]} for c in CLAIMS]


def verdict_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"Claim (abstract)": r["text"] + (" *(main)*" if r["main"] else ""),
                          "How we test it": r["test"], "Verdict": f"**{r['verdict']}**",
                          "Evidence": f"[{r['page']}]({r['page']}.md)"} for r in rows])


def title_tag(rows: list[dict]) -> str | None:
    """"[Re]" when every main claim is supported, "[¬Re]" when all are decided and one is not, else None."""
    main = [r["verdict"] for r in rows if r["main"]]
    if any(v in (NOT_RUN, "inconclusive") for v in main):
        return None
    return "[Re]" if all(v == "supported" for v in main) else "[¬Re]"


def gate_vs_truth(results: str | Path, experiment: str) -> pd.DataFrame:
    """Synthetic runs: the mean gate weight per token beside the strength each modality was generated with
    (``data.synthetic.strength`` in the run's config.yaml; the fused token has none)."""
    import yaml

    gate = gate_table(results, experiment)
    if gate.empty:
        return gate
    cfg = yaml.safe_load((run_dirs(results, experiment)[0] / "config.yaml").read_text())
    strength = dict(zip(("text", "audio", "vision"), cfg["data"]["synthetic"]["strength"]))
    mean = gate.iloc[-1]
    return pd.DataFrame([{"Token": t, "Mean gate weight (test)": round(float(mean[t]), 3),
                          "Generated strength": strength.get(t, "-")} for t in gate.columns if t != "run"])


# ----------------------------------------------------------------------------- alignment, compute, bench

def alignment_frame(results: str | Path) -> pd.DataFrame:
    """Every ``alignment.json`` (under ``runs/`` or ``alignment/``): one row per run and kind (tokens/features)."""
    cols = ["experiment", "run", "kind", "modality_gap", "silhouette_modality", "silhouette_polarity", "path"]
    rows, seen = [], set()
    for p in sorted([*Path(results).glob("runs/*/*/alignment.json"), *Path(results).glob("alignment/*/*/alignment.json")]):
        key = (p.parent.parent.name, p.parent.name)
        if key in seen:
            continue
        seen.add(key)
        data = json.loads(p.read_text())
        for kind in ("tokens", "features"):
            s = data.get(kind) or {}
            pol = s.get("silhouette_polarity")
            rows.append({"experiment": key[0], "run": key[1], "kind": kind, "modality_gap": s.get("modality_gap"),
                         "silhouette_modality": s.get("silhouette_modality"),
                         "silhouette_polarity": pol.get("mean") if isinstance(pol, dict) else pol,
                         "path": str(p)})
    df = pd.DataFrame(rows, columns=cols)
    for c in cols[3:6]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def env_frame(results: str | Path) -> pd.DataFrame:
    """One row per complete run record: its ``env.json`` plus experiment and run."""
    rows = [{"experiment": d.parent.name, "run": d.name, **json.loads((d / "env.json").read_text())}
            for d in run_dirs(results) if (d / "env.json").is_file()]
    return pd.DataFrame(rows, columns=None if rows else ["experiment", "run", "wall_time_s"])


def compute_table(env: pd.DataFrame) -> pd.DataFrame:
    """Per experiment: runs, device, threads, total and mean wall time; a last row with the total."""
    if env.empty:
        return pd.DataFrame()
    g = env.groupby("experiment")
    join = lambda s: ", ".join(sorted({str(x) for x in s.dropna()}))  # noqa: E731
    df = pd.DataFrame({"Runs": g.size(), "Device": g["device_name"].agg(join) if "device_name" in env else "-",
                       "Torch threads": g["torch_threads"].agg(join) if "torch_threads" in env else "-",
                       "Total wall time (min)": (g["wall_time_s"].sum() / 60).round(1),
                       "Mean per run (min)": (g["wall_time_s"].mean() / 60).round(2)})
    df.loc["all"] = [len(env), "", "", round(env["wall_time_s"].sum() / 60, 1),
                     round(env["wall_time_s"].mean() / 60, 2)]
    return df.reset_index(names="Experiment")


def environment_table(env: pd.DataFrame) -> pd.DataFrame:
    """The distinct values of each environment field over all runs (one line each)."""
    keys = ["miar", "python", "torch", "numpy", "platform", "device", "device_name", "cpu_count", "commit", "dirty"]
    rows = [{"Field": k, "Values over the runs": ", ".join(sorted({str(v) for v in env[k].dropna()})) or "-"}
            for k in keys if k in env]
    return pd.DataFrame(rows)


def bench_files(results: str | Path) -> list[Path]:
    return sorted((Path(results) / "bench").glob("*.json"))


def flatten(obj, prefix: str = "") -> dict:
    """Nested dicts as dotted keys (lists of scalars joined)."""
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in flatten(val, f"{prefix}{key}.").items()}
    if isinstance(obj, list) and not any(isinstance(x, (dict, list)) for x in obj):
        return {prefix.rstrip("."): ", ".join(map(str, obj))}
    if isinstance(obj, list):
        return {k: v for i, x in enumerate(obj) for k, v in flatten(x, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): obj}


def bench_tables(path: Path) -> dict[str, pd.DataFrame]:
    """A benchmark JSON as tables: every list of records (at any depth) is its own table, named by its key;
    the remaining scalar fields form a "summary" table of dotted keys and values."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, list):
        return {"records": pd.DataFrame([flatten(x) if isinstance(x, dict) else {"value": x} for x in data])}
    tables: dict[str, pd.DataFrame] = {}
    scalars: dict[str, object] = {}

    def visit(obj: dict, prefix: str) -> None:
        for key, val in obj.items():
            name = f"{prefix}{key}"
            if isinstance(val, list) and val and all(isinstance(x, dict) for x in val):
                tables[name] = pd.DataFrame([flatten(x) for x in val])
            elif isinstance(val, dict):
                visit(val, f"{name}.")
            else:
                scalars[name] = ", ".join(map(str, val)) if isinstance(val, list) else val

    visit(data, "")
    summary = {"summary": pd.DataFrame(list(scalars.items()), columns=["Field", "Value"])} if scalars else {}
    return {**summary, **tables}


# ----------------------------------------------------------------------------- notebooks and staleness

def notebooks(results: str | Path) -> list[Path]:
    return sorted((Path(results) / "notebooks").glob("**/*.ipynb"))


def notebook_links(results: str | Path, doc_dir: str | Path) -> str:
    """A MyST list of the executed notebooks: one line per experiment, each run a download link (marked when
    its run record is not complete: the run failed or is still running)."""
    groups: dict[str, list[str]] = {}
    for nb in notebooks(results):
        exp = nb.parent.relative_to(Path(results) / "notebooks").as_posix()
        rel = Path(os.path.relpath(nb.resolve(), Path(doc_dir).resolve())).as_posix()
        done = (Path(results) / "runs" / exp / nb.stem / "metrics.json").is_file()
        groups.setdefault(exp, []).append(f"{{download}}`{nb.stem} <{rel}>`" + ("" if done else " (incomplete)"))
    return "\n".join(f"- `{exp}`: " + ", ".join(links) for exp, links in groups.items())


def staleness(results: str | Path) -> list[str]:
    """Disagreements between the run records and runs.csv (``miar collect`` has not been rerun)."""
    runs = load_runs(results)
    listed = {(e, r) for e, r in zip(runs["experiment"], runs["run"])} if not runs.empty else set()
    records = {(d.parent.name, d.name) for d in run_dirs(results)}
    out = [f"run record `{e}/{r}` is not in runs.csv" for e, r in sorted(records - listed)]
    out += [f"runs.csv lists `{e}/{r}` but its run record is missing" for e, r in sorted(listed - records)]
    return out


# ----------------------------------------------------------------------------- the specification gap

SPEC = (  # choice the abstract leaves open, config key, ablation variants of MAIN that vary it
    ("How the four feature tokens are formed", "model.token_scheme", ("h2", "h3")),
    ("How many tokens (the abstract: four)", "model.n_tokens", ("tokens3",)),
    ("Whether tokens come from cross-modal interaction at all", "model.interaction", ("no_interaction",)),
    ("Normalization after projecting to the shared width", "model.norm", ("no_norm",)),
    ("z-scoring raw features with training statistics", "data.standardize", ()),
    ("Contextual encoder per modality", "model.encoder", ()),
    ("Shared width", "model.d_model", ()),
    ("Encoder and interaction depth", "model.n_layers", ()),
    ("Contrastive projection width", "model.proj_dim", ()),
    ("Contrastive loss", "loss.contrastive", ("supcon", "no_contrastive")),
    ("Weight of the contrastive term (lambda)", "loss.weight", ("weight0.3", "no_contrastive")),
    ("Temperature", "loss.temperature", ()),
    ("Learnable temperature", "loss.learnable_temperature", ("learnable_temp",)),
    ("Which token pairs are contrasted", "loss.pairs", ()),
    ("Unequal modality contributions: a gate over the tokens", "model.gate", ("gate",)),
    ("Task loss", "loss.task", ()),
    ("Neighbouring utterances as context", "data.context", ("context0",)),
    ("Text features", "data.text_features", ("minilm", "mpnet", "static")),
)


def inferred_keys() -> list[str]:
    """Dotted config keys whose definition in ``miar/config.py`` is marked ``[inferred]``."""
    from miar import config as C

    src = Path(C.__file__).read_text()
    lines = src.splitlines()
    section = {f.type if isinstance(f.type, str) else f.type.__name__: f.name
               for f in C.fields(C.Config) if f.name not in ("name", "seed")}
    keys = []
    for node in ast.parse(src).body:
        if isinstance(node, ast.ClassDef) and node.name in section:
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and "[inferred]" in lines[stmt.lineno - 1]:
                    keys.append(f"{section[node.name]}.{stmt.target.id}")
    return keys


def config_value(cfg, key: str):
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _alternatives(cfg, key: str) -> str:
    import typing

    section, name = key.split(".")
    tp = typing.get_type_hints(type(getattr(cfg, section)))[name]
    current = config_value(cfg, key)
    if typing.get_origin(tp) is typing.Literal:
        return ", ".join(f"`{a}`" for a in typing.get_args(tp) if a != current)
    if tp is bool:
        return f"`{not current}`"
    return "any " + ("number" if tp is float else "integer" if tp is int else getattr(tp, "__name__", str(tp)))


def main_config():
    """(name, Config) of the study's main experiment (``mosi_bc_miar``; ``mosi`` before it existed)."""
    from miar import config as C

    for name in (MAIN, "mosi"):
        try:
            return name, C.load(name)
        except C.ConfigError:
            continue
    return "default", C.Config()


def study_overrides(sweep: str = "study") -> dict[str, list[str]]:
    """Experiment display name -> its overrides in the study sweep ({} when the sweep does not resolve)."""
    try:
        from miar.sweep import load_sweep

        _, runs = load_sweep(sweep)
    except Exception:  # a sweep being edited must not break the book; the table then says "planned"
        return {}
    skip = ("name=", "train.save_model=", "train.progress=")  # bookkeeping, not part of the ablation
    return {r.display: [o for o in r.overrides if not o.startswith(skip)] for r in runs}


def spec_table(cfg, overrides: dict[str, list[str]], base: str = MAIN) -> pd.DataFrame:
    """The specification-gap table: choice, our default (read from the config), alternatives, key, ablation."""
    inferred = set(inferred_keys())
    rows = []
    for choice, key, abl in SPEC:
        ablation = []
        swept = [n.split("+", 1)[1] for n, ov in overrides.items() if n.startswith(base + "+")
                 and any(o.split("=", 1)[0] == key for o in ov)]
        for v in dict.fromkeys([*swept, *abl]):
            name = f"{base}+{v}"
            ov = overrides.get(name)
            ablation.append(f"`+{v}` ({', '.join(f'`{o}`' for o in ov) if ov else 'planned'})")
        rows.append({"Choice left open": choice, "Our default": f"`{config_value(cfg, key)}`",
                     "Alternatives": _alternatives(cfg, key), "Config key": f"`{key}`" +
                     (" [inferred]" if key in inferred else ""), "Ablation": "; ".join(ablation) or "-"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- figures

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
    return fig


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


# ----------------------------------------------------------------------------- Sphinx: results are a dependency

def results_fingerprint(results: str | Path) -> str:
    """A hash of every file's path, size and mtime under ``results`` (changes whenever a result does)."""
    import hashlib

    h = hashlib.sha256()
    root = Path(results)
    for p in sorted(root.rglob("*")) if root.is_dir() else []:
        if p.is_file() and not p.name.startswith("."):
            st = p.stat()
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _outdated(app, env, added, changed, removed) -> list[str]:
    """Sphinx ``env-get-outdated``: re-read (and so re-execute) every page when results/ has changed since
    the last build; otherwise an incremental build would keep pages whose source did not change but whose
    numbers did."""
    fp = results_fingerprint(os.environ.get(RESULTS_ENV) or Path(app.srcdir) / "results")
    if getattr(env, "miar_results_fingerprint", None) == fp:
        return []
    env.miar_results_fingerprint = fp
    return sorted(set(env.found_docs) - set(added) - set(changed))


def setup(app) -> dict:
    """``miar.report`` as a Sphinx extension (``_config.yml``: ``sphinx: extra_extensions``)."""
    app.connect("env-get-outdated", _outdated)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# ----------------------------------------------------------------------------- README

START, END = "<!-- results:start -->", "<!-- results:end -->"


def readme_table(results: str | Path) -> str:
    """The README's results block (GitHub markdown), generated from ``results/`` only."""
    summary = load_summary(results)
    head = "Generated by `python -m miar.report readme` from `results/summary.json`; do not edit by hand."
    if not present(summary, MAIN_TABLE):
        return f"**Not yet run.** No results in `results/summary.json` yet: `{RERUN}` makes them.\n\n{head}"
    ours = results_table(summary, MAIN_TABLE, HEADLINE)
    anchors = anchor_table(summary, results)[["System (published)", "Metric", "Published (runs)", "Source",
                                             "Ours: experiment", "Ours: mean ± std (n)"]]
    sizes = sorted({tuple(json.loads((d / "metrics.json").read_text()).get("n", {}).values())
                    for d in run_dirs(results, MAIN)})
    split = f" (train / valid / test utterances: {'; '.join(' / '.join(map(str, n)) for n in sizes)})" if sizes else ""
    return "\n\n".join([
        f"Ours: CMU-MOSI, bc-LSTM split{split}, released utterance features, checkpoint selected on held-out "
        "training videos only, test set evaluated once; mean ± population std over seeds.",
        md_table(ours), "Published numbers on the same split (their code selects checkpoints on the test set), "
        "beside ours in separate columns:", md_table(anchors), head])


def update_readme(readme_path: str | Path, results: str | Path) -> bool:
    """Replace the text between the results markers with :func:`readme_table`; True if the file changed."""
    path = Path(readme_path)
    text = path.read_text()
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"{path}: needs exactly one {START} ... {END} block")
    before, rest = text.split(START)
    _, after = rest.split(END)
    new = f"{before}{START}\n{readme_table(results)}\n{END}{after}"
    if new == text:
        return False
    path.write_text(new)
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "readme" or len(args) > 3:
        print("usage: python -m miar.report readme [README.md] [results]", file=sys.stderr)
        return 2
    readme = args[1] if len(args) > 1 else "README.md"
    changed = update_readme(readme, args[2] if len(args) > 2 else "results")
    print(f"{readme}: results block {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
