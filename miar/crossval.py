"""The cross-validated primary study's own analyses (``miar/experiments/designs/all_cv.yaml``), for ``miar collect``.

- :func:`calibration_rows` (``tables/cv_calibration.csv``): the declared A/A check. A model is compared with its
  own copy trained with disjoint seeds (``mosi_cv_text_only`` against ``mosi_cv_text_only_aa``, ``mosi_cv_miar``
  against ``mosi_cv_miar_aa``: same folds, seeds 1111 + r and 2111 + r). Each of ``aa_resamples`` A/A resamples
  draws the repeats with replacement and, for each drawn repeat, which of the two seed sets is A; an interval
  method is calibrated when its 95% interval excludes 0 in about 5% of them. Reported per method with the
  exact (Clopper-Pearson) 95% binomial interval of the rate, per A/A pair and pooled over both.
- :func:`interval_method`: which interval the cross-validated families' verdicts use: the two-stage bootstrap
  (videos, then repeats) when its pooled A/A rate is inside the declared band, else the one-stage video bootstrap
  when that one is, else the two-stage one with the note that neither is calibrated.
- :func:`sensitivity_rows` (``tables/cv_sensitivity.csv``): the cross-validated families' comparisons again
  without the 10 standard-split validation videos that drove tuning (the design's ``std_valid_videos``).

The A/A statistics are those of :mod:`miar.stats` for the primary metric (MAE), computed from per-video sums of
absolute-error differences, which is exact for MAE and draws the same random numbers in the same order as
:func:`miar.stats.video_bootstrap`, :func:`~miar.stats.hierarchical_bootstrap` and
:func:`~miar.stats.sign_flip_test` (tests/test_crossval.py checks that they agree), at a hundredth of the cost.
Every A/A draw uses the same bootstrap and permutation draws (common random numbers: margins.yaml's seed), so
the rate's variation is that of the A/A draws, and the whole check takes seconds.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.stats import binomtest
from threadpoolctl import threadpool_limits

from miar import stats as S
from miar.declarations import Settings, load_families, load_settings
from miar.errors import UserError
from miar.records import Predictions
from miar.strict import load_yaml

DESIGN = "all_cv.yaml"
METHODS = {  # column name -> what it is
    "two_stage": "two-stage bootstrap (videos, then repeats)",
    "video": "video bootstrap (repeats fixed)",
    "permutation": "sign-flip permutation, p < alpha",
    "rule": "decision rule (permutation and two-stage interval)",
}
INTERVAL_OF = {"two_stage": "h", "video": "v"}  # a calibrated interval method -> the comparisons' interval


class DesignError(UserError, ValueError):
    """The cross-validated study's design file cannot be used."""


def design(name: str = DESIGN) -> dict:
    """The design file (miar/experiments/designs/), read strictly enough for what collect takes from it."""
    path = resources.files("miar") / "experiments" / "designs" / name
    d = load_yaml(path.read_text(), str(path))
    inf = d.get("inference", {}) if isinstance(d, dict) else {}
    band, videos = inf.get("aa_band"), d.get("std_valid_videos") if isinstance(d, dict) else None
    if not (isinstance(band, list) and len(band) == 2 and isinstance(inf.get("aa_resamples"), int)
            and isinstance(videos, list) and isinstance(d.get("families"), dict)):
        raise DesignError(f"{path}: needs inference.aa_band [low, high], inference.aa_resamples, std_valid_videos "
                          "and families")
    return d


def cv_families(d: dict | None = None) -> dict[str, dict]:
    """The declared comparison families (comparisons.yaml) that the design names, in the design's order."""
    names = list((d or design())["families"])
    fams = load_families()
    return {n: fams[n] for n in names if n in fams}


def _mae_sums(a: np.ndarray, b: np.ndarray, y: np.ndarray, video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, V) per-video sums of |A - y| - |B - y| for each paired row, and (V,) utterances per video."""
    d = np.abs(a - y) - np.abs(b - y)
    v = int(video.max()) + 1
    sums = np.stack([np.bincount(video, weights=row, minlength=v) for row in d])
    return sums, np.bincount(video, minlength=v).astype(np.float64)


@functools.lru_cache(maxsize=4)
def _draws(v: int, s: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The random draws of miar.stats's video bootstrap, two-stage bootstrap and permutation for ``v`` videos and
    ``s`` paired rows with ``seed``, in the same order: (video weights, two-stage video weights, two-stage row
    weights, signs: -1 where a permutation swaps a video). Drawn once and shared by every A/A draw (common random numbers)."""
    rng = np.random.default_rng(seed)
    wv = np.concatenate([S._video_counts(rng, v, r) for r in S._chunks(resamples)])
    rng, wh, c = np.random.default_rng(seed), [], []
    for r in S._chunks(resamples):
        wh.append(S._video_counts(rng, v, r))
        c.append(rng.multinomial(s, np.full(s, 1.0 / s), size=r) / s)
    rng = np.random.default_rng(seed)
    flips = np.concatenate([rng.integers(0, 2, size=(r, v)).astype(np.float64) for r in S._chunks(resamples)])
    return wv, np.concatenate(wh), np.concatenate(c), 1.0 - 2.0 * flips


def mae_distributions(d: np.ndarray, n: np.ndarray, resamples: int, seed: int) -> dict[str, np.ndarray]:
    """The MAE difference's video-bootstrap and two-stage distributions and the permutation p from per-video sums
    ``d`` (S, V) and counts ``n`` (V,): the same draws as miar.stats's functions with the same ``seed``."""
    wv, wh, c, signs = _draws(d.shape[1], d.shape[0], resamples, seed)
    observed = d.sum() / n.sum() / d.shape[0]
    stat = (signs @ d.sum(0)) / n.sum() / d.shape[0]
    hits = int(np.sum(np.abs(stat) >= abs(observed) - 1e-12 * max(1.0, abs(observed))))
    return {"video": ((wv @ d.T) / (wv @ n)[:, None]).mean(-1),
            "two_stage": (((wh @ d.T) / (wh @ n)[:, None]) * c).sum(-1),
            "p": np.array([(1 + hits) / (1 + resamples)])}


def aa_fired(pa: Predictions, pb: Predictions, st: Settings, resamples: int, seed: int = 0) -> dict[str, int]:
    """How many of ``resamples`` A/A resamples each method of :data:`METHODS` fires on (interval excluding 0, or
    p below alpha), for a model ``pa`` against its copy ``pb`` (both pooled per repeat, paired by repeat)."""
    common = sorted(set(pa.pairing) & set(pb.pairing))
    if not common or pa.ids != pb.ids:
        return {}
    p = pa.preds[[pa.pairing.index(r) for r in common]]
    q = pb.preds[[pb.pairing.index(r) for r in common]]
    video, labels = S.video_codes(pa.ids), pa.labels
    rng, fired = np.random.default_rng(seed), dict.fromkeys(METHODS, 0)
    with threadpool_limits(1):  # small products: BLAS threads only contend (4x slower on 2 busy cores)
        for _ in range(resamples):
            for m, hit in _aa_draw(rng, p, q, labels, video, st).items():
                fired[m] += int(hit)
    return fired


def _aa_draw(rng, p: np.ndarray, q: np.ndarray, labels: np.ndarray, video: np.ndarray, st: Settings) -> dict:
    """One A/A draw: the repeats with replacement, which seed set is A at random per drawn repeat; whether each
    method of :data:`METHODS` fires on it."""
    draw = rng.integers(0, len(p), len(p))
    flip = rng.integers(0, 2, len(p)).astype(bool)[:, None]
    a, b = np.where(flip, q[draw], p[draw]), np.where(flip, p[draw], q[draw])
    d, n = _mae_sums(a, b, labels, video)
    dist = mae_distributions(d, n, st.resamples, st.seed)
    out = {m: S.excludes_zero(*S.percentile_interval(dist[m])) for m in ("two_stage", "video")}
    out["permutation"] = bool(dist["p"][0] < st.alpha)
    out["rule"] = out["permutation"] and out["two_stage"]
    return out


def _rate_row(pair: str, method: str, k: int, n: int, band: list, n_repeats: int) -> dict:
    lo, hi = binomtest(k, n).proportion_ci(0.95, method="exact") if n else (math.nan, math.nan)
    rate = k / n if n else math.nan
    return {"pair": pair, "method": method, "what": METHODS[method], "n_repeats": n_repeats, "resamples": n,
            "fired": k, "rate": rate, "ci_low": float(lo), "ci_high": float(hi), "band_low": band[0],
            "band_high": band[1], "in_band": bool(band[0] <= rate <= band[1]) if n else False}


def calibration_rows(results: str | Path, d: dict | None = None, st: Settings | None = None,
                     load=None) -> list[dict]:
    """``tables/cv_calibration.csv``: per A/A pair and pooled ("both"), each method's A/A rate (see the module
    docstring); no rows while no A/A pair has a repeat in common."""
    from miar.comparisons import load_predictions  # lazy: miar.comparisons imports miar.pooled

    d, st = d or design(), st or load_settings()
    load = load or (lambda name: load_predictions(results, name))
    band, n_aa = d["inference"]["aa_band"], d["inference"]["aa_resamples"]
    rows, pooled, reps = [], {m: [0, 0] for m in METHODS}, []
    for a, b in d["families"]["cv_aa"]["pairs"]:
        pa, pb = load(a), load(b)
        fired = aa_fired(pa, pb, st, n_aa) if pa is not None and pb is not None else {}
        if not fired:
            continue
        n_rep = len(set(pa.pairing) & set(pb.pairing))
        reps.append(n_rep)
        for m, k in fired.items():
            rows.append(_rate_row(f"{a} vs {b}", m, k, n_aa, band, n_rep))
            pooled[m][0] += k
            pooled[m][1] += n_aa
    if len(reps) > 1:
        rows += [_rate_row("both", m, k, n, band, min(reps)) for m, (k, n) in pooled.items()]
    return rows


def interval_method(rows: list[dict]) -> tuple[str, str]:
    """(interval, why): "h" (two-stage) or "v" (video only) for the cross-validated verdicts, from the pooled
    A/A rates (or the only pair's); "h" with a note when no A/A row exists yet or neither is in the band."""
    mine = [r for r in rows if r["pair"] == "both"] or rows
    rate = {r["method"]: r for r in mine}
    if "two_stage" not in rate:
        return "h", "A/A check not run yet: two-stage bootstrap (declared)"
    for m in ("two_stage", "video"):
        if rate[m]["in_band"]:
            return INTERVAL_OF[m], f"{METHODS[m]}: A/A rate {rate[m]['rate']:.3f} inside the declared band"
    return "h", "neither interval's A/A rate is inside the declared band: two-stage bootstrap, not calibrated"


def sensitivity_rows(results: str | Path, d: dict | None = None, interval: str = "h") -> list[dict]:
    """``tables/cv_sensitivity.csv``: the cross-validated families' comparisons without the standard split's
    10 validation videos (the same columns as comparisons.csv)."""
    from miar.comparisons import comparisons  # lazy, as above

    d = d or design()
    fams = cv_families(d)
    return comparisons(results, fams, drop_videos=frozenset(d["std_valid_videos"]),
                       interval=dict.fromkeys(fams, interval))


__all__ = ["DESIGN", "DesignError", "METHODS", "aa_fired", "calibration_rows", "cv_families", "design",
           "interval_method", "mae_distributions", "sensitivity_rows"]
