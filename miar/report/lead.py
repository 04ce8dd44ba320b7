"""The whole answer in a few lines, for the README's first screen and the top of the book's index: what
reproduced, what was contradicted (or shown no larger than the margin), what stays undecided and why, and
which performance targets were missed, each with its number and a link to the page with the evidence.

Everything is read from ``tables/comparisons.csv`` (through :func:`miar.report.verdicts.verdicts`, so the
outcome of each claim is the one the verdict rule reached) and the benchmark and sweep records; nothing is typed.
:func:`lead_parts` returns named phrases (the book glues them into its own sentences); :func:`lead_block` is
the README's version, between the ``lead`` markers.

One sign convention throughout: a difference is the MAE (or other primary metric) of the model the claim
favours minus the other's, so a negative MAE difference supports the claim."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from miar.report.catalog import LOWER_IS_BETTER, PRIMARY
from miar.report.evidence import NOT_COMPARED, diff_text, load_comparisons
from miar.report.findings import display_name, headline
from miar.report.formatting import fmt, label
from miar.report.verdicts import CLAIMS, claim_rows, verdicts

Link = Callable[[str], str]  # a page name ("results") -> the link target the document uses


def _pair(a: str, b: str) -> str:
    """"MIAR vs bc-LSTM"; an ablation drops the repeated model name ("MIAR vs no contrastive term")."""
    na, nb = display_name(a), display_name(b)
    base = na.split(",")[0]
    return f"{na} vs {nb.removeprefix(base + ', ')}"


def _names(claims: list[dict]) -> dict[str, str]:
    """Each claim in the abstract's words, standing alone ("The same on the bc-LSTM split" carries the claim
    before it), marked when it is a main claim."""
    out, before = {}, ""
    for c in claims:
        text = c["text"]
        if text.startswith("The same ") and before:
            text = f"{before}, {text.removeprefix('The same ')}"
        before = c["text"]
        out[c["claim"]] = f"{text} (main claim)" if c["main"] else text
    return out


def _numbers(rows: pd.DataFrame, keep: tuple[str, ...]) -> list[str]:
    """``MIAR vs bc-LSTM +0.045 [+0.015, +0.073]`` for each row whose verdict is in ``keep``."""
    said = {"worse": lambda r: f", {display_name(r['a'])} worse", "equivalent": lambda r: ", within the margin"}
    return [f"{_pair(r['a'], r['b'])} {diff_text(r)}{said.get(r['verdict'], lambda r: '')(r)}"
            for _, r in rows.iterrows() if r["verdict"] in keep]


def _item(name: str, page: str, numbers: list[str], link: Link) -> str:
    said = f": {'; '.join(numbers)}" if numbers else ""
    return f"{name}{said} ([{page}]({link(page)}))"


def _detectable(rows: pd.DataFrame) -> pd.Series:
    ran = rows[rows["verdict"] != NOT_COMPARED] if not rows.empty else rows
    return ran["mdd80"].astype(float) if not ran.empty else pd.Series(dtype=float)


def _why(undecided: list[pd.DataFrame]) -> str:
    """Why the undecided claims stay undecided: what their comparisons could detect at 80% power."""
    rows = pd.concat(undecided) if undecided else pd.DataFrame()
    ran = rows[rows["verdict"] != NOT_COMPARED] if not rows.empty else rows
    if ran.empty:
        return "their comparisons have not run yet"
    mdd = ran["mdd80"].astype(float)
    return (f"with {int(ran['n_videos'].max())} test videos, their comparisons detect at 80% power only "
            f"{label(PRIMARY)} differences of {fmt(mdd.min(), PRIMARY)} to {fmt(mdd.max(), PRIMARY)}, against a "
            f"declared margin of {fmt(float(ran['margin'].iloc[0]), PRIMARY)}")


def missed_targets(results: str | Path) -> list[str]:
    """Each performance target the records show missed: "the whole study (...): 486.3 min, target ≤ 4 h"."""
    from miar.report.perf import load_bench, targets_table
    from miar.report.speed import load_study_speed, missed
    from miar.report.study_time import study_wall

    out = []
    path = Path(results) / "bench" / "cpu.json"
    if path.is_file():
        table = targets_table(load_bench(path), study_wall(results))
        out += [f"{m[0].lower()}{m[1:]}: {v}, over the target ({t.split(',')[0]})"
                for m, v, t, met in zip(table["Measure"], table["Value"], table["Target"], table["Met"]) if met == "no"]
    speed = load_study_speed(results)  # the study-speed benchmark; the study's own time is the row above
    if speed is not None:
        out += missed(speed)
    return out


SCOPE = ("CMU-MOSI with text from a frozen offline encoder (MPNet) plus the released audio features; not the "
         "released text and visual features (their extractors saw the labels), fine-tuned text encoders or CMU-MOSEI")


def decisive(results: str | Path, link: Link) -> str:
    """Where the cross-validated study stands: runs done of those declared, which claims it decides, when."""
    from miar.report.design import load_design, runs_done

    d = load_design()
    claims = [f["claim"] for f in d["families"].values() if f.get("claim")]
    return (f"every MOSI video a test video, {d['data']['folds']} folds x {d['data']['repeats']} repeats, declared "
            f"before its runs; {runs_done(results)} of {d['runs']} runs done; it decides the {', '.join(claims)} "
            f"claims once every model has all {d['data']['repeats']} repeats, until then the fixed splits do "
            f"([method]({link('method')}))")


def lead_parts(results: str | Path, link: Link) -> dict[str, str]:
    """The lead as named phrases: ``verdict``, ``reproduced``, ``contradicted``, ``undecided``, ``why``,
    ``missed`` ("none" where a group is empty), ``convention`` (the sign convention), ``scope`` (what the
    verdicts cover) and ``decisive`` (where the cross-validated study stands)."""
    comps, claims = load_comparisons(results), verdicts(results)
    names = _names(claims)
    rows = {c.key: claim_rows(comps, c)[0] if c.family else pd.DataFrame() for c in CLAIMS}
    groups: dict[str, list[str]] = {"reproduced": [], "contradicted": [], "undecided": []}
    undecided_rows = []
    for c in claims:
        r, name, page = rows[c["claim"]], names[c["claim"]], c["page"]
        if c["verdict"] == "reproduced":
            groups["reproduced"].append(_item(name, page, _numbers(r, ("better",)) if not r.empty else [], link))
        elif c["verdict"] in ("contradicted", "equivalent"):
            keep = ("worse",) if c["verdict"] == "contradicted" else ("equivalent",)
            groups["contradicted"].append(_item(name, page, _numbers(r, keep), link))
        elif c["verdict"] == "inconclusive":
            mdd = _detectable(r)
            said = [f"could detect only {fmt(mdd.max(), PRIMARY)} or more"] if not mdd.empty else []
            groups["undecided"].append(_item(name, page, said, link))
            undecided_rows.append(r)
        else:  # not yet run, not testable
            groups["undecided"].append(_item(name, page, [f"{c['verdict']}, {c['detail']}"], link))
    out = {k: "; ".join(v) if v else "none" for k, v in groups.items()}
    missed = missed_targets(results)
    return {"verdict": headline(claims), **out, "why": _why(undecided_rows) if groups["undecided"] else "none",
            "missed": "; ".join(missed) if missed else "none", "scope": SCOPE, "decisive": decisive(results, link),
            "convention": f"{label(PRIMARY)} differences are the model the claim favours minus the other, with "
                          "95% intervals over seeds and test videos: "
                          f"{'negative' if PRIMARY in LOWER_IS_BETTER else 'positive'} supports the claim"}


def lead_block(results: str | Path, link: Link = lambda page: f"book/{page}.md") -> str:
    """The README's lead (GitHub markdown): the verdict line and one bullet per outcome."""
    if load_comparisons(results).empty:
        return "**Not yet run.** No comparisons in `results/tables/comparisons.csv` yet: `make book` makes them."
    p = lead_parts(results, link)
    undecided = p["undecided"] + (f". Why: {p['why']}" if p["why"] != "none" else "")
    lines = [p["verdict"], f"{p['convention'][0].upper()}{p['convention'][1:]}.", "",
             f"- **Reproduced:** {p['reproduced']}.", f"- **Contradicted or no larger than the margin:** "
             f"{p['contradicted']}.", f"- **Undecided:** {undecided}.", f"- **Scope:** {p['scope']}.",
             f"- **The study that can decide:** {p['decisive']}.", f"- **Missed targets:** {p['missed']}."]
    return "\n".join(lines)

