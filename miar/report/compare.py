"""Seed-level comparison of two experiments: the difference of their seed means with a Welch 95% interval
(:func:`compare`); "better" / "worse" only when the interval excludes 0.

It answers "would another seed differ?" only, not "would another sample of test videos differ?". The
verdicts use the test-video comparisons of :mod:`miar.report.evidence` (``tables/comparisons.csv``); this is
kept for quantities that have no per-utterance prediction (the modality gap of the alignment chapter) and for
descriptive seed-level tables, which the book labels as such."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from miar.report.catalog import LOWER_IS_BETTER, NOT_YET_RUN, PRIMARY
from miar.report.formatting import fmt, label
from miar.report.io import seed_values


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


def welch_table(comps: dict[str, Comparison | None]) -> pd.DataFrame:
    """One row per labelled comparison: the means, the gain with its interval, and the reading."""
    return pd.DataFrame([{"Comparison": lab, "Result": c.text() if c else NOT_YET_RUN,
                          "Reading": c.status if c else NOT_YET_RUN} for lab, c in comps.items()])
