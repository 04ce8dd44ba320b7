"""The abstract's claims (:data:`CLAIMS`) and the rules that turn comparisons into verdicts: a claim that
"a beats every b" is supported only when every comparison is "better" (:func:`compare`), contradicted when
one is "worse"; the main claims decide the [Re] / [¬Re] title (:func:`title_tag`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from miar.report.compare import Comparison, compare, compare_values
from miar.report.formatting import label
from miar.report.io import alignment_frame, load_runs, load_summary
from miar.report.study import BASELINES, ENCODERS, MAIN, NOT_RUN, PRIMARY, SYNTH
from miar.report.tuning import ranked_by_validation


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
          "MIAR vs the strongest baseline (lowest mean validation MAE) with each text encoder", "encoders", True),
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
    strongest = (ranked_by_validation(summary, BASELINES) or ["mosi_bc_text_only"])[0]  # validation only
    pairs = [(MAIN, strongest)] + [(v(e), f"{strongest}+{e}") for e in ENCODERS if e != "cnn"]
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
