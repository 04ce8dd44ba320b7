"""Our tables from ``summary.json`` and the run records: the main results table, the published anchors beside
ours (never in one column), the status of the planned experiments, gate weights and the ablation variants."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from miar.metrics import METRICS
from miar.report.anchors import ANCHORS_BC
from miar.report.catalog import ABLATIONS, ENCODERS, MAIN, METRIC_INFO, NOT_YET_RUN, planned, tuned, variant
from miar.report.formatting import fmt_ci, fmt_stats, label
from miar.report.io import prediction_metric, run_dirs


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


def results_table(summary: dict, rows: dict[str, str], metrics=METRICS, ci: bool = False) -> pd.DataFrame:
    """Rows = experiments (label -> mean ± std, or the 95% CI with ``ci``); a missing experiment's Seeds cell
    reads "not yet run" and its metric cells "-"."""
    out = []
    for name, lab in rows.items():
        n = summary.get(name, {}).get("n_seeds")
        row = {"Model": lab, "Experiment": f"`{name}`", "Seeds": n if n else NOT_YET_RUN}
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
        if a.ours == "majority":  # the bc split's test labels, from our bc-split MIAR runs
            s = prediction_metric(results, tuned("miar", "bclf"), "majority")
            name = "test labels of our runs"
        elif a.ours is None:
            s, name = None, "(no matching experiment)"
        else:
            name = f"`{a.ours}`"
            s = (prediction_metric(results, a.ours, a.metric) if a.metric == "has0_macro_f1"
                 else stats_of(summary, a.ours, a.metric))
        scale, dec = METRIC_INFO[a.metric][1], METRIC_INFO[a.metric][2]
        reading = NOT_YET_RUN if a.ours else "not compared"
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


def status_table(summary: dict, legacy: dict | None = None) -> pd.DataFrame:
    """Per chapter: how many planned experiments have results, their seeds (or repeats), and which are missing; ``legacy``
    (:func:`~miar.report.io.load_legacy`) holds the cross-fitted experiments, whose fold records are not counted."""
    from miar.report.io import without_folds

    summary = {**without_folds(summary)[0], **(legacy or {})}
    rows = []
    for group, names in planned().items():
        missing = [n for n in names if n not in summary]
        seeds = sorted({int(summary[n].get("n_seeds") or 0) for n in names if n in summary})
        rows.append({"Experiments": group, "With results": f"{len(names) - len(missing)} of {len(names)}",
                     "Seeds each": "-" if not seeds else f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}",
                     "Not yet run": ", ".join(f"`{n}`" for n in missing) or "-"})
    extra = sorted(set(summary) - {n for names in planned().values() for n in names})
    if extra:
        rows.append({"Experiments": "others in the results", "With results": str(len(extra)), "Seeds each": "-",
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


def variants(summary: dict, base: str = MAIN) -> list[str]:
    """The variants of ``base`` in the results (:func:`~miar.report.catalog.variant`), in ABLATIONS order, then
    any others."""
    prefix = variant("", base)
    found = [n for n in summary if n.startswith(prefix) and n != base]
    order = {variant(v, base): i for i, v in enumerate([*ABLATIONS, *ENCODERS])}
    return sorted(found, key=lambda n: (order.get(n, len(order)), n))


def ablation_names(summary: dict, overrides: dict[str, list[str]], base: str = MAIN) -> list[str]:
    """Ablation variants of ``base`` (text encoders excluded): ABLATIONS, then any others in the ablations sweep
    or in the results, in that order."""
    prefix = variant("", base)
    extra = [n[len(prefix):] for n in [*overrides, *summary] if n.startswith(prefix) and n != base]
    return list(dict.fromkeys(v for v in [*ABLATIONS, *extra] if v not in ENCODERS))


def split_sizes_table(results: str | Path) -> pd.DataFrame:
    """The split sizes the runs actually used (``metrics.json`` ``n``), one row per distinct (train, valid,
    test): how many experiments and runs used it and which families (the experiment name up to its first
    ``+``, with ``*`` for its variants). Empty without run records."""
    groups: dict[tuple, dict] = {}
    for d in run_dirs(results):
        n = json.loads((d / "metrics.json").read_text()).get("n", {})
        key = tuple(n.get(k) for k in ("train", "valid", "test"))
        g = groups.setdefault(key, {"experiments": set(), "runs": 0})
        g["experiments"].add(d.parent.name)
        g["runs"] += 1
    rows = []
    for key, g in sorted(groups.items(), key=lambda kv: -kv[1]["runs"]):
        fams = sorted({e.split("+", 1)[0] + ("*" if any(x.startswith(e.split("+", 1)[0] + "+")
                                                        for x in g["experiments"]) else "")
                       for e in g["experiments"]})
        rows.append({"Train / valid / test": " / ".join("-" if v is None else f"{v:,}" for v in key),
                     "Experiments": len(g["experiments"]), "Runs": g["runs"],
                     "Which": ", ".join(f"`{f}`" for f in fams)})
    return pd.DataFrame(rows)


CITED = re.compile(r"^(.*?) \(([^()]*\d{4})\)(.*)$")  # "MMMU-BA (Ghosal et al., EMNLP 2018), T+A+V"


def cite_apart(df: pd.DataFrame, column: str = "System (published)", to: str = "Publication") -> pd.DataFrame:
    """``df`` with the publication named in brackets in ``column`` moved to its own column ``to`` ("MMMU-BA
    (Ghosal et al., EMNLP 2018), T+A+V" -> "MMMU-BA, T+A+V" and "Ghosal et al., EMNLP 2018"), for a note
    under the table; a cell without one keeps its text and gets "-"."""
    if column not in df.columns:
        return df
    parts = [CITED.match(str(v)) for v in df[column]]
    return df.assign(**{column: [f"{m[1]}{m[3]}" if m else v for m, v in zip(parts, df[column])],
                        to: [m[2] if m else "-" for m in parts]})
