"""The summary page's first screen, generated from ``tables/comparisons.csv``: the verdict line with the title
tag (:func:`headline`), the forest plot of every main-claim comparison (:func:`main_claim_rows`) and a few
plain-language findings (:func:`findings`). Nothing here is typed: each sentence is built from the files."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from miar.report.catalog import (
    ABLATIONS,
    BASELINES,
    BC_FT_TABLE,
    BC_TABLE,
    ENCODERS,
    MAIN,
    MAIN_FT_TABLE,
    MAIN_TABLE,
    PRIMARY,
    SEEDS_PLANNED,
    parts,
)
from miar.report.data_limits import headroom_finding
from miar.report.evidence import NOT_COMPARED, diff_text, load_comparisons, rows_of, verdict_text
from miar.report.formatting import fmt, label, words
from miar.report.tuning import ranked_by_validation
from miar.report.verdicts import CLAIMS, claim_rows, complete, title_tag

SHORT = {"sota": "State of the art", "sota_bc": "State of the art (bc split)", "interaction": "Interaction", "contrastive": "Contrastive",
         "normalization": "Normalization", "unequal": "Gate", "text_generalization": "Text features"}


ENCODER_SHORT = {"cnn": "released CNN", "minilm": "MiniLM", "mpnet": "MPNet", "static": "static",
                 "ft_minilm": "MiniLM fine-tuned"}


def display_name(experiment: str) -> str:
    """A reader's name for an experiment: "Text only", "MIAR, no contrastive term", "bc-LSTM (MiniLM)"."""
    base, variant = parts(experiment)
    name = {**MAIN_TABLE, **BC_TABLE}.get(base, base).replace(" (ours)", "")
    if variant in ABLATIONS:
        return f"{name}, {ABLATIONS[variant]}"
    if variant in ENCODERS:
        return f"{name} ({ENCODER_SHORT.get(variant, variant)})"
    return f"{name}, {variant}" if variant else name


def pair_label(key: str, a: str, b: str) -> str:
    """A short forest-plot label: "Contrastive: MIAR vs no contrastive term", "Text features (MiniLM): MIAR vs
    bc-LSTM"."""
    (base_a, va), (base_b, vb) = parts(a), parts(b)
    if base_a == base_b and (va in ABLATIONS or vb in ABLATIONS):
        return f"{SHORT[key]}: {'MIAR' if not va else ABLATIONS[va]} vs {'MIAR' if not vb else ABLATIONS[vb]}"
    if key == "text_generalization" and va == vb and (va in ENCODERS or not va):
        return f"{SHORT[key]} ({ENCODER_SHORT[va or 'mpnet']}): {display_name(base_a)} vs {display_name(base_b)}"
    return f"{SHORT[key]}: {display_name(a)} vs {display_name(b)}"


def main_claim_rows(comps: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The primary-metric comparisons behind every main claim, with a label per row for the forest plot."""
    frames, labels = [], []
    for c in CLAIMS:
        if not (c.main and c.family):
            continue
        rows, _ = claim_rows(comps, c)  # as the verdict counts them
        frames.append(rows)
        labels += [pair_label(c.key, a, b) for a, b in zip(rows["a"], rows["b"])]
    frames = [f for f in frames if not f.empty]
    return (pd.concat(frames) if frames else comps.iloc[0:0]), labels


def headline(claims: list[dict]) -> str:
    """"**Verdict: ...**" with the title tag and how many main claims got each verdict."""
    tag = title_tag(claims)
    main = [r for r in claims if r["main"]]
    counts = pd.Series([r["verdict"] for r in main]).value_counts()
    tally = words([f"{n} {v}" for v, n in counts.items()])
    what = {"[Re]": "every main claim of the abstract reproduces",
            "[¬Re]": "at least one main claim of the abstract is contradicted or shown no larger than the margin",
            None: "the runs do not decide the main claims either way"}[tag]
    return f"**Verdict: {tag or 'inconclusive'}** — {what} ({len(main)} main claims: {tally})."


def _strongest(results: Path, comps: pd.DataFrame) -> str | None:
    from miar.report.io import load_summary

    ranked = ranked_by_validation(load_summary(results), BASELINES)
    for b in ranked:
        rows = rows_of(comps, "primary_std", PRIMARY, [(MAIN, b)])
        if not rows.empty and rows.iloc[0]["verdict"] != NOT_COMPARED:
            r = rows.iloc[0]
            return (f"Against the strongest baseline (lowest mean validation MAE, frozen MPNet text), {display_name(b)}, "
                    f"MIAR's {label(PRIMARY)} differs by {diff_text(r)} (single models paired by seed, negative "
                    f"favours MIAR; 95% interval over seeds and test videos): {verdict_text(r)}.")
    return None


def _fine_tuned(results: Path, comps: pd.DataFrame) -> str | None:
    """Where the primary table's fine-tuned text arm stands: its runs so far, or (complete) MIAR against the
    strongest baseline on validation with that text."""
    from miar.report.io import load_summary

    summary = load_summary(results)
    seeds = [int(summary.get(n, {}).get("n_seeds") or 0) for n in [*MAIN_FT_TABLE, *BC_FT_TABLE]]
    what = "The primary table's fine-tuned text arm (MiniLM, top two layers trained, with audio; sweep `primary_ft`)"
    rows = rows_of(comps, "primary_std_ft", PRIMARY)
    if not complete(rows):
        if not any(seeds):
            return f"{what} is not run yet."
        return (f"{what} is part way: {sum(seeds)} of {SEEDS_PLANNED * len(seeds)} runs, {min(seeds)} to "
                f"{max(seeds)} seeds per experiment; its comparisons join the verdicts once every one has all "
                f"{SEEDS_PLANNED}.")
    baselines = {n: lab for n, lab in MAIN_FT_TABLE.items() if n != next(iter(MAIN_FT_TABLE))}
    for b in ranked_by_validation(summary, baselines):
        r = rows[rows["b"] == b]
        if not r.empty:
            r = r.iloc[0]
            return (f"With fine-tuned MiniLM text, against the strongest baseline (lowest mean validation MAE with that "
                    f"text), {display_name(b)}, "
                    f"MIAR's {label(PRIMARY)} differs by {diff_text(r)}: {verdict_text(r)}.")
    return None


def _power(rows: pd.DataFrame) -> str | None:
    ran = rows[rows["verdict"] != NOT_COMPARED]
    if ran.empty:
        return None
    mdd = ran["mdd80"].astype(float)
    videos = int(ran["n_videos"].max())
    no_seeds = int((ran["seeds_needed"].astype(float) == math.inf).sum())
    which = f"all {no_seeds}" if no_seeds == len(ran) else f"{no_seeds} of {len(ran)}"
    seeds = f" for {which} of them no number of seeds would suffice, because" if no_seeds else ""
    return (f"The study can only see large effects: at 80% power its comparisons detect {label(PRIMARY)} differences "
            f"of {fmt(mdd.min(), PRIMARY)} to {fmt(mdd.max(), PRIMARY)}, against a declared margin of "
            f"{fmt(float(ran['margin'].iloc[0]), PRIMARY)};{seeds} the test set has only {videos} videos "
            f"(about {int(ran['videos_needed'].astype(float).median()):,} would be needed).")


def _ablations(comps: pd.DataFrame) -> str | None:
    rows = pd.concat([rows_of(comps, f) for f in ("components_std", "inferred_std")]) if not comps.empty else comps
    ran = rows[rows["verdict"] != NOT_COMPARED] if not rows.empty else rows
    if ran.empty:
        return None
    decided = ran[ran["verdict"].isin(["better", "worse"])]
    names = [f"{display_name(b if a == MAIN else a).removeprefix('MIAR, ')} "
             f"({'worse' if (v == 'better') == (a == MAIN) else 'better'} than MIAR)"
             for a, b, v in zip(decided["a"], decided["b"], decided["verdict"])]
    found = f": {'; '.join(names)}" if names else ""  # "; ": the variants' names hold commas
    verb = "differs" if len(decided) == 1 else "differ"
    return (f"Of {len(ran)} variants of MIAR (its components and the choices we inferred), {len(decided)} "
            f"{verb} detectably from it in {label(PRIMARY)}{found}.")


def findings(results: str | Path) -> list[str]:
    """Three to five sentences a reader of the first screen should leave with, from the result files."""
    comps = load_comparisons(results)
    if comps.empty:
        return []
    rows, _ = main_claim_rows(comps)
    out = [_strongest(Path(results), comps), _fine_tuned(Path(results), comps), _power(rows),
           headroom_finding(results, comps), _ablations(comps)]
    return [s for s in out if s]
