"""The abstract's claims (:data:`CLAIMS`) and the rule that turns the comparisons of ``tables/comparisons.csv``
into verdicts (:func:`verdicts`), and the verdicts into the ReScience title tag (:func:`title_tag`).

Each claim names the comparisons that test it (family and pairs of ``miar/experiments/comparisons.yaml``) on the
primary metric; each is a difference of single trained models paired by seed (:mod:`miar.comparisons`). A
comparison is *better* / *worse* when its Holm-adjusted permutation p is below alpha and the hierarchical 95%
interval excludes zero, *equivalent* when the Holm-adjusted equivalence test (TOST against the
margin declared in ``miar/experiments/margins.yaml``) is below alpha, else *inconclusive*. A claim is
*reproduced* when every comparison is better, *contradicted* when one is worse, *equivalent* when none is worse
and one is equivalent (the claimed gain is shown to be smaller than the margin), else *inconclusive*.

A claim's ``later`` families join its verdict only once complete: every comparison run with all
:data:`~miar.report.catalog.SEEDS_PLANNED` seeds on both sides; until then the evidence shows them as interim and
they decide nothing. The primary table's fine-tuned text arm (families ``primary_std_ft``, ``primary_bc_ft``) was
such a family until the cross-validated design (``designs/all_cv.yaml``, "not_in_this_design") declared it
exploratory and out of the verdicts: it ran with no neighbouring utterances (context 0) at configurations tuned
with frozen MPNet, so it measures "no context and a weaker encoder", not fine-tuning. It is shown on the results
page, labelled exploratory; it stays in the Holm sets it was declared in (more conservative for the frozen arm).
A claim's ``cv`` family (the cross-validated primary study, ``designs/all_cv.yaml``) decides it alone once
complete (every comparison with all the design's repeats on both sides): then its *deciding* row does
(comparisons.csv ``deciding``: MIAR against the baseline with the lowest validation MAE), or every row where the
family declares none. Until then it is shown as interim and decides nothing, and the fixed-split families do
(declared before its runs: no verdict is read from a partly run design).
Holm's correction is not re-applied here: ``miar collect`` adjusts over each Holm set as comparisons.yaml declares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from miar.report.catalog import (
    BC_FT_TABLE,
    BC_TABLE,
    CV_EXTRA,
    CV_TABLE,
    MAIN,
    MAIN_FT_TABLE,
    MAIN_TABLE,
    PRIMARY,
    SEEDS_PLANNED,
    SYNTH,
    variant,
)
from miar.report.catalog import (
    NOT_YET_RUN as NOT_RUN,
)
from miar.report.compare import compare_values
from miar.report.evidence import NOT_COMPARED, evidence_line, load_comparisons, rows_of
from miar.report.formatting import fmt, label
from miar.report.io import alignment_frame

CLAIM_VERDICTS = ("reproduced", "equivalent", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Claim:
    key: str
    text: str  # what the abstract claims, in our words
    test: str  # how this study tests it
    page: str  # the chapter with the evidence
    main: bool  # decides the [Re] / [¬Re] title
    family: str = ""  # the comparisons (tables/comparisons.csv) that test it; "" when none
    pairs: tuple = ()  # (A, B) pairs of that family; () for all of them
    later: tuple = ()  # families that join the verdict once complete (:func:`complete`)
    cv: str = ""  # the cross-validated family that decides alone once complete


def _v(name: str) -> str:
    return variant(name)


CLAIMS = (
    Claim("sota", "MIAR outperforms state-of-the-art methods on CMU-MOSI",
          f"MIAR vs every baseline, each at its tuned configuration, on the leak-free standard split "
          f"({label(PRIMARY)}), frozen MPNet text (the fine-tuned MiniLM arm is exploratory, out of the verdicts); "
          f"cross-validated over all 93 videos once complete; published numbers beside ours", "results", True,
          "primary_std", cv="cv_sota"),
    Claim("sota_bc", "The same on the bc-LSTM split",
          f"the same comparisons on the bc split with the leak-free modalities ({label(PRIMARY)})", "results", False,
          "primary_bc"),
    Claim("interaction", "Feature interaction (the feature tokens) improves sentiment prediction",
          "MIAR vs `.no_interaction`", "ablations", True, "components_std", ((MAIN, _v("no_interaction")),),
          cv="cv_interaction"),
    Claim("contrastive", "Contrastive alignment improves sentiment prediction",
          "MIAR vs `.no_contrastive`", "ablations", True, "components_std", ((MAIN, _v("no_contrastive")),),
          cv="cv_contrastive"),
    Claim("normalization", "Normalization strategies improve sentiment prediction", "MIAR vs `.no_norm`",
          "ablations", False, "components_std", ((MAIN, _v("no_norm")),)),
    Claim("alignment", "Alignment reduces the distribution differences between modalities",
          "modality gap of the tokens, MIAR vs `.no_contrastive`, on CMU-MOSI and on synthetic data with a "
          "gap that z-scoring cannot remove (seed-level Welch interval: the gap is not a per-utterance prediction)", "alignment", False),
    Claim("unequal", "Modelling the unequal contributions of the modalities helps", "`.gate` vs MIAR",
          "ablations", False, "components_std", ((_v("gate"), MAIN),)),
    Claim("text_generalization", "MIAR generalizes across different text-model features",
          "MIAR vs the stronger of the two strongest baselines (mean validation MAE) with each text encoder",
          "encoders", True, "textgen_std"),
    Claim("mosei", "The gains hold on CMU-MOSEI", "no CMU-MOSEI data is available here", "method", False),
)


def combine(verdicts: list[str]) -> str:
    """A claim's verdict from its comparisons' verdicts (see the module docstring)."""
    if not verdicts or all(v == NOT_COMPARED for v in verdicts):
        return NOT_RUN
    if "worse" in verdicts:
        return "contradicted"
    if "equivalent" in verdicts:
        return "equivalent"
    if NOT_COMPARED in verdicts:
        return NOT_RUN
    return "reproduced" if all(v == "better" for v in verdicts) else "inconclusive"


def complete(rows: pd.DataFrame, seeds: int = SEEDS_PLANNED) -> bool:
    """Whether a family's rows are all compared with ``seeds`` seeds (or more) on both sides."""
    if rows.empty or (rows["verdict"] == NOT_COMPARED).any():
        return False
    return bool((rows["n_seeds_a"].astype(float) >= seeds).all() and (rows["n_seeds_b"].astype(float) >= seeds).all())


def cv_repeats() -> int:
    """The repeats the cross-validated design declares (designs/all_cv.yaml)."""
    from miar.crossval import design

    return int(design()["data"]["repeats"])


def deciding_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows marked ``deciding`` (comparisons.csv), or all of them where none is."""
    if "deciding" not in rows or rows.empty:
        return rows
    mark = rows["deciding"].astype(str).str.lower() == "true"
    return rows[mark] if mark.any() else rows


def claim_rows(comps: pd.DataFrame, claim: Claim) -> tuple[pd.DataFrame, list[str]]:
    """The primary-metric comparisons that decide ``claim``: its complete ``cv`` family's deciding rows alone;
    else its family's (pairs), plus each ``later`` family that is complete; and an interim line for each family
    that is not complete yet."""
    if claim.cv:
        cv = rows_of(comps, claim.cv, PRIMARY)
        if complete(cv, cv_repeats()):
            return deciding_rows(cv), []
    rows, interim = rows_of(comps, claim.family, PRIMARY, claim.pairs or None), []
    if claim.cv:
        interim.append(_interim(claim.cv, rows_of(comps, claim.cv, PRIMARY), cv_repeats(), "repeats"))
    for fam in claim.later:
        extra = rows_of(comps, fam, PRIMARY)
        if complete(extra):
            rows = pd.concat([rows, extra])
        else:
            interim.append(_interim(fam, extra))
    return rows, interim


ARMS = {"primary_std": "frozen MPNet text", "primary_bc": "frozen MPNet text",
        "cv_sota": "frozen MPNet text, cross-validated over all 93 videos",
        "primary_std_ft": "fine-tuned MiniLM text", "primary_bc_ft": "fine-tuned MiniLM text"}  # the text arms


def evidence(claim: Claim, rows: pd.DataFrame, interim: list[str], names: dict[str, str]) -> str:
    """A claim's comparisons in words. Where the claim spans text arms (``later`` families), each arm's lines
    are grouped under it ("With frozen MPNet text, vs Text only: ...; .... With fine-tuned MiniLM text, ..."),
    since both arms compare models of the same names."""
    if not claim.later:
        return "; ".join([evidence_line(r, names) for _, r in rows.iterrows()] + interim)
    arms = [f"With {ARMS.get(fam, f'family `{fam}`')}, "
            + "; ".join(evidence_line(r, names) for _, r in g.iterrows())
            for fam, g in rows.groupby("family", sort=False)]
    return ". ".join(arms + (["; ".join(interim)] if interim else []))


def _interim(family: str, rows: pd.DataFrame, planned: int = SEEDS_PLANNED, unit: str = "seeds") -> str:
    """The evidence line of a later family that is not complete yet: what has run, and that it decides nothing."""
    ran = rows[rows["verdict"] != NOT_COMPARED] if not rows.empty else rows
    if ran.empty:
        return f"family `{family}` not yet run (joins the verdict once complete)"
    n = pd.concat([ran["n_seeds_a"], ran["n_seeds_b"]]).astype(int)
    seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
    return (f"family `{family}`: interim, {seeds} of {planned} {unit}, {len(ran)} of {len(rows)} comparisons "
            f"run; not in the verdict until complete")


def _power_statement(rows: pd.DataFrame) -> str:
    """What would decide an inconclusive claim: the largest detectable difference and what would shrink it."""
    ran = rows[rows["verdict"] != NOT_COMPARED]
    if ran.empty:
        return ""
    worst = ran.loc[ran["mdd80"].astype(float).idxmax()]
    m = worst["metric"]
    seeds = float(worst["seeds_needed"])
    more = (f"more seeds alone cannot get there (the {int(worst['n_videos'])} test videos are too few); about "
            f"{int(float(worst['videos_needed'])):,} test videos would" if seeds == math.inf else
            f"about {int(seeds):,} seeds per experiment would (or {int(float(worst['videos_needed'])):,} test videos)")
    return (f"With these runs the study detects, at 80% power, a {label(m)} difference of "
            f"{fmt(worst['mdd80'], m)} or more; to detect the margin {fmt(worst['margin'], m)}, {more}")


def _alignment(results) -> tuple[str, str]:
    align = alignment_frame(results)
    if align.empty:
        return NOT_RUN, "no alignment analyses yet"

    def gap(e):
        return align.loc[(align["experiment"] == e) & (align["kind"] == "tokens"), "modality_gap"].dropna()

    comps = [compare_values(a, b, "modality_gap", gap(a), gap(b))
             for a, b in ((MAIN, _v("no_contrastive")), (SYNTH, f"{SYNTH}+no_contrastive"))]
    done = [c for c in comps if c is not None]
    status = [c.status for c in done]
    detail = "; ".join(f"`{c.a}` vs `{c.b}`: {c.text()}, {c.status} (seed-level)" for c in done)
    if len(done) < len(comps):
        return NOT_RUN, (detail + "; " if detail else "") + "alignment analyses missing for some experiments"
    verdict = ("contradicted" if "worse" in status else "reproduced" if all(s == "better" for s in status)
               else "inconclusive")
    return verdict, detail


VERDICTS_CSV = "verdicts.csv"  # results/tables/: written by miar collect, read by every page and the README


def _decided(rows: pd.DataFrame, verdict: str) -> str:
    """Which half of the rule decided: "interval and permutation" (better / worse), "equivalence (TOST)",
    "neither" (inconclusive), "-" (not run)."""
    if verdict in ("reproduced", "contradicted"):
        return "interval and permutation"
    if verdict == "equivalent":
        return "equivalence (TOST)"
    return "neither" if verdict == "inconclusive" else "-"


def verdict_records(results: str | Path) -> list[dict]:
    """``tables/verdicts.csv``: one row per claim: its verdict, the half of the rule that decided, the families
    and number of comparisons that decided it, their seeds (repeats for a cross-validated family), the largest
    detectable difference at 80% power among them, and the families still interim. The rule is applied here
    once (:func:`combine` over :func:`claim_rows`); the pages read the file."""
    comps = load_comparisons(results)
    out = []
    for c in CLAIMS:
        row = {"claim": c.key, "main": c.main, "verdict": NOT_RUN, "decided_by": "-", "families": "",
               "comparisons": 0, "seeds": 0, "unit": "", "mdd80": math.nan, "margin": math.nan, "interim": ""}
        if c.family:
            rows, interim = claim_rows(comps, c)
            ran = rows[rows["verdict"] != NOT_COMPARED] if not rows.empty else rows
            verdict = combine(list(rows["verdict"])) if not rows.empty else NOT_RUN
            fams = list(dict.fromkeys(rows["family"])) if not rows.empty else []
            n = pd.concat([ran["n_seeds_a"], ran["n_seeds_b"]]).astype(int) if not ran.empty else pd.Series([0])
            row.update(verdict=verdict, decided_by=_decided(rows, verdict), families=" ".join(fams),
                       comparisons=len(ran), seeds=int(n.min()),
                       unit="repeats" if any(f.startswith("cv_") for f in fams) else "seeds",
                       mdd80=float(ran["mdd80"].astype(float).max()) if not ran.empty else math.nan,
                       margin=float(ran["margin"].astype(float).max()) if not ran.empty else math.nan,
                       interim=" ".join(f for f in (*((c.cv,) if c.cv else ()), *c.later)
                                        if interim and f not in fams))
        elif c.key == "alignment":
            row.update(verdict=_alignment(results)[0], decided_by="seed-level Welch interval")
        else:
            row.update(verdict="not testable")
        out.append(row)
    return out


def load_verdicts(results: str | Path) -> dict[str, str]:
    """claim -> verdict from ``tables/verdicts.csv`` ({} before miar collect has written it)."""
    p = Path(results) / "tables" / VERDICTS_CSV
    if not p.is_file() or not p.stat().st_size:
        return {}
    return dict(zip(*(pd.read_csv(p, dtype=str, keep_default_na=False)[k] for k in ("claim", "verdict"))))


def verdicts(results: str | Path) -> list[dict]:
    """One row per claim of ``CLAIMS``: the claim, how it is tested, the verdict (read from
    ``tables/verdicts.csv``, computed only where that file has no row for it), its evidence and power."""
    comps = load_comparisons(results)
    written = load_verdicts(results)
    out = []
    for c in CLAIMS:
        power = ""
        if c.family:
            rows, interim = claim_rows(comps, c)
            verdict = written.get(c.key) or (combine(list(rows["verdict"])) if not rows.empty else NOT_RUN)
            names = {**MAIN_TABLE, **BC_TABLE, **MAIN_FT_TABLE, **BC_FT_TABLE, **CV_TABLE, **CV_EXTRA}
            detail = evidence(c, rows, interim, names) or "no comparisons yet"
            power = _power_statement(rows) if not rows.empty else ""
        elif c.key == "alignment":
            verdict, detail = _alignment(results)
            verdict = written.get(c.key) or verdict
        else:
            verdict, detail = "not testable", "no CMU-MOSEI features are available to this study"
        out.append({"claim": c.key, "text": c.text, "test": c.test, "page": c.page, "main": c.main,
                    "verdict": verdict, "detail": detail, "power": power})
    return out


def verdict_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"Claim (abstract)": r["text"] + (" *(main)*" if r["main"] else ""),
                          "How we test it": r["test"], "Verdict": f"**{r['verdict']}**",
                          "Evidence": f"[{r['page']}]({r['page']}.md)"} for r in rows])


def title_tag(rows: list[dict]) -> str | None:
    """"[Re]" when every main claim is reproduced, "[¬Re]" when a main claim is contradicted or shown
    equivalent to the baseline, else None (inconclusive: the book spells that out)."""
    main = [r["verdict"] for r in rows if r["main"]]
    if any(v in ("contradicted", "equivalent") for v in main):
        return "[¬Re]"
    if main and all(v == "reproduced" for v in main):
        return "[Re]"
    return None
