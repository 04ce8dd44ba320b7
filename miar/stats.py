"""Comparing two experiments on one test set, with the test video as the resampling unit.

All runs of a study share one test set (CMU-MOSI bc split: 752 utterances of 31 videos), so an interval over
seeds alone answers "would another seed differ?" but not "would another sample of videos differ?".
Everything here is a pure function of predictions (no files):

- :func:`video_bootstrap`: average each utterance's prediction over an experiment's seeds, resample whole test
  videos with replacement (an utterance comes with its video), recompute metric(A) - metric(B).
- :func:`hierarchical_bootstrap`: also resample the seeds of each experiment in every resample, so the
  interval holds both seed variance and test-sample variance. The study's verdicts use this one.
- :func:`sign_flip_test`: paired permutation test; under "A and B are exchangeable" the two experiments'
  predictions are swapped video by video (exactly enumerated with few videos).
- :func:`holm`, :func:`tost`, :func:`mdd`, :func:`needed`, :func:`decide`: multiplicity, equivalence,
  power and the verdict rule.

A resample of videos is a vector of multiplicities (how often each video was drawn), so metrics are computed
as weighted metrics (:func:`weighted_metrics`) with the multiplicity of an utterance's video as its weight;
that equals recomputing the metric on the resampled rows, for every metric of :data:`miar.metrics.METRICS`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from miar.metrics import METRICS, _weighted_f1

LOWER_IS_BETTER = frozenset({"mae"})
CHUNK = 2000  # resamples evaluated at once: bounds memory to a few (CHUNK, N) float arrays
VERDICTS = ("better", "worse", "equivalent", "inconclusive")


def video_of(utterance_id: str) -> str:
    """The video of a segment id: MMSA's ``video$_$clip`` or MOSI's ``<video>_<k>``."""
    return utterance_id.split("$_$")[0] if "$_$" in utterance_id else utterance_id.rsplit("_", 1)[0]


def video_codes(ids) -> np.ndarray:
    """(N,) integer code 0..V-1 of each utterance's video, in sorted order of the video ids."""
    return np.unique([video_of(str(i)) for i in ids], return_inverse=True)[1].astype(np.int64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _weighted_corr(P: np.ndarray, y: np.ndarray, W: np.ndarray, sw: np.ndarray) -> np.ndarray:
    """Weighted Pearson r per row; 0.0 where either side is constant (as :func:`miar.metrics._pearson`)."""
    mp = (W * P).sum(-1, keepdims=True) / sw[:, None]  # (R, 1)
    my = (W * y).sum(-1, keepdims=True) / sw[:, None]
    pc, yc = P - mp, y - my  # (R, N)
    vp, vy = (W * pc * pc).sum(-1), (W * yc * yc).sum(-1)
    den = np.sqrt(vp * vy)
    ok = (_weighted_ptp(P, W) > 0) & (_weighted_ptp(np.broadcast_to(y, P.shape), W) > 0) & (den > 0)
    return np.where(ok, (W * pc * yc).sum(-1) / np.where(ok, den, 1.0), 0.0)


def _weighted_ptp(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Range of each row of ``X`` over the entries with positive weight (the constant-side test of
    :func:`miar.metrics._pearson`, so both give 0.0 for exactly the same inputs)."""
    on = W > 0
    return np.where(on, X, -np.inf).max(-1) - np.where(on, X, np.inf).min(-1)


def weighted_metrics(P: np.ndarray, y: np.ndarray, W: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every metric of ``METRICS`` per row of predictions ``P`` (R, N) against labels ``y`` (N,), each
    utterance counted ``W`` (R, N) times (None: once). Returns (R,) arrays; equal to
    :func:`miar.metrics.compute_all` on the rows repeated by their weights."""
    P = np.atleast_2d(np.asarray(P, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    W = np.ones_like(P) if W is None else np.broadcast_to(np.asarray(W, dtype=np.float64), P.shape)
    sw = W.sum(-1)
    yt, pt = y >= 0, P >= 0
    keep = W * (y != 0)  # (R, N) weights of the non-zero labels
    yn, pn = y > 0, P > 0
    out = {
        "has0_acc2": _ratio((W * (yt == pt)).sum(-1), sw),
        "has0_f1": _weighted_f1(yt, pt, W),
        "non0_acc2": _ratio((keep * (yn == pn)).sum(-1), keep.sum(-1)),
        "non0_f1": _weighted_f1(yn, pn, keep),
        "mae": _ratio((W * np.abs(P - y)).sum(-1), sw),
        "corr": _weighted_corr(P, y, W, sw),
    }
    for name, b in (("acc5", 2.0), ("acc7", 3.0)):
        hit = np.round(np.clip(P, -b, b)) == np.round(np.clip(y, -b, b))
        out[name] = _ratio((W * hit).sum(-1), sw)
    return {k: out[k] for k in METRICS}


@dataclass(frozen=True)
class Pair:
    """Two experiments' test predictions on the same utterances: ``a`` (Sa, N), ``b`` (Sb, N), one row per
    seed; ``y`` (N,) labels; ``video`` (N,) video codes 0..V-1."""

    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    video: np.ndarray

    def __post_init__(self):
        n = self.y.shape[0]
        if self.a.ndim != 2 or self.b.ndim != 2 or self.a.shape[1] != n or self.b.shape[1] != n:
            raise ValueError(f"Pair: predictions {self.a.shape} and {self.b.shape} do not match {n} labels")
        if self.video.shape != (n,) or self.video.min() < 0:
            raise ValueError("Pair: need one non-negative video code per utterance")
        if len(self.a) == 0 or len(self.b) == 0:
            raise ValueError("Pair: each side needs at least one seed")

    @property
    def n_videos(self) -> int:
        return int(self.video.max()) + 1


def point(pair: Pair) -> dict[str, tuple[float, float, float]]:
    """metric -> (metric(A), metric(B), A - B) for the seed-averaged predictions on the whole test set."""
    ma, mb = (weighted_metrics(s.mean(0), pair.y) for s in (pair.a, pair.b))
    return {k: (float(ma[k][0]), float(mb[k][0]), float(ma[k][0] - mb[k][0])) for k in METRICS}


def _video_counts(rng: np.random.Generator, v: int, r: int) -> np.ndarray:
    """(r, v) multiplicities of v videos drawn with replacement, r times."""
    return rng.multinomial(v, np.full(v, 1.0 / v), size=r).astype(np.float64)


def video_weights(rng: np.random.Generator, video: np.ndarray, r: int) -> np.ndarray:
    """(r, N) weight of each utterance in r resamples of its videos: its video's multiplicity."""
    return _video_counts(rng, int(video.max()) + 1, r)[:, video]


def _seed_means(rng: np.random.Generator, preds: np.ndarray, r: int) -> np.ndarray:
    """(r, N) mean prediction over a resample (with replacement) of the rows (seeds) of ``preds``."""
    s = len(preds)
    counts = rng.multinomial(s, np.full(s, 1.0 / s), size=r) / s  # (r, S)
    return counts @ preds  # (r, N)


def _diffs(chunks) -> dict[str, np.ndarray]:
    """Concatenate per-chunk metric(A) - metric(B) dicts into (R,) arrays."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in METRICS}
    for ma, mb in chunks:
        for k in METRICS:
            parts[k].append(ma[k] - mb[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def _chunks(n: int):
    for start in range(0, n, CHUNK):
        yield min(CHUNK, n - start)


def video_bootstrap(pair: Pair, resamples: int = 10_000, seed: int = 0) -> dict[str, np.ndarray]:
    """metric -> (R,) bootstrap distribution of metric(A) - metric(B), resampling test videos only
    (seed-averaged predictions fixed)."""
    rng = np.random.default_rng(seed)
    pa, pb = pair.a.mean(0), pair.b.mean(0)

    def chunk(r):
        w = video_weights(rng, pair.video, r)  # (r, N)
        return weighted_metrics(np.broadcast_to(pa, w.shape), pair.y, w), \
            weighted_metrics(np.broadcast_to(pb, w.shape), pair.y, w)

    return _diffs(chunk(r) for r in _chunks(resamples))


def hierarchical_bootstrap(pair: Pair, resamples: int = 10_000, seed: int = 0) -> dict[str, np.ndarray]:
    """As :func:`video_bootstrap`, but each resample also redraws A's and B's seeds with replacement
    before averaging, so the distribution holds seed variance and test-sample variance together."""
    rng = np.random.default_rng(seed)

    def chunk(r):
        w = video_weights(rng, pair.video, r)
        pa, pb = _seed_means(rng, pair.a, r), _seed_means(rng, pair.b, r)
        return weighted_metrics(pa, pair.y, w), weighted_metrics(pb, pair.y, w)

    return _diffs(chunk(r) for r in _chunks(resamples))


def _flip_stats(pa: np.ndarray, pb: np.ndarray, y: np.ndarray, video: np.ndarray,
                flips: np.ndarray) -> dict[str, np.ndarray]:
    """metric(A') - metric(B') where A' and B' swap their predictions on the videos flagged in ``flips``."""
    swap = flips[:, video].astype(bool)  # (r, N)
    a2, b2 = np.where(swap, pb, pa), np.where(swap, pa, pb)
    ma, mb = weighted_metrics(a2, y), weighted_metrics(b2, y)
    return {k: ma[k] - mb[k] for k in METRICS}


def sign_flip_test(pair: Pair, resamples: int = 10_000, seed: int = 0, exact_up_to: int = 12) -> dict[str, float]:
    """metric -> two-sided p-value of the paired sign-flip permutation test over videos.

    The statistic is metric(A) - metric(B) of the seed-averaged predictions; under the null the two
    experiments' predictions are exchangeable within each video. With at most ``exact_up_to`` videos all
    2^V swaps are enumerated and p is exact; otherwise p = (1 + #{|T*| >= |T|}) / (1 + R) over random swaps.
    """
    pa, pb, v = pair.a.mean(0), pair.b.mean(0), pair.n_videos
    observed = {k: d for k, (_, _, d) in point(pair).items()}
    exact = v <= exact_up_to
    if exact:
        flips = np.array(list(itertools.product((0, 1), repeat=v)), dtype=np.int8)
        batches = [flips[i:i + CHUNK] for i in range(0, len(flips), CHUNK)]
    else:
        rng = np.random.default_rng(seed)
        batches = [rng.integers(0, 2, size=(r, v), dtype=np.int8) for r in _chunks(resamples)]
    hits = dict.fromkeys(METRICS, 0)
    total = 0
    for flips in batches:
        stats = _flip_stats(pa, pb, pair.y, pair.video, flips)
        total += len(flips)
        for k in METRICS:
            t = abs(observed[k])
            hits[k] += int(np.sum(np.abs(stats[k]) >= t - 1e-12 * max(1.0, t)))
    if exact:
        return {k: hits[k] / total if math.isfinite(observed[k]) else math.nan for k in METRICS}
    return {k: (1 + hits[k]) / (1 + total) if math.isfinite(observed[k]) else math.nan for k in METRICS}


def percentile_interval(dist: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The (1-level)/2 and (1+level)/2 percentiles of a bootstrap distribution (nan-aware)."""
    d = np.asarray(dist, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(d, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (nan entries stay nan and do not count in the family)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    running = 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def tost(dist: np.ndarray, margin: float) -> float:
    """Two one-sided tests of |A - B| < margin from a bootstrap distribution of A - B:
    p = max(P*(d <= -margin), P*(d >= margin)), each as (1 + count) / (1 + R). p < alpha exactly when the
    (1 - 2 alpha) percentile interval lies inside (-margin, margin), up to the +1 and interpolation."""
    d = np.asarray(dist, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0 or not margin > 0:
        return math.nan
    low, high = np.sum(d <= -margin), np.sum(d >= margin)
    return float((1 + max(low, high)) / (1 + d.size))


def mdd(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable difference of a two-sided level-alpha test with the given power, for an
    estimate with standard error ``se`` (normal approximation)."""
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * se)


def needed(var_h: float, var_v: float, n_seeds: int, n_videos: int, margin: float,
           alpha: float = 0.05, power: float = 0.8) -> tuple[float, float]:
    """(seeds, videos) per experiment that would bring the minimum detectable difference down to ``margin``.

    ``var_h`` is the hierarchical bootstrap variance, ``var_v`` the video-only one; their difference is the
    seed part, which shrinks as 1/seeds. Seeds: inf when the test set alone already exceeds the margin
    (more seeds cannot help). Videos: the whole variance scaled as 1/videos, seeds held fixed."""
    target = (margin / (norm.ppf(1 - alpha / 2) + norm.ppf(power))) ** 2
    if not all(math.isfinite(x) for x in (var_h, var_v, target)) or target <= 0:
        return math.nan, math.nan
    var_s = max(var_h - var_v, 0.0)
    seeds = (math.inf if var_v >= target else float(math.ceil(n_seeds * var_s / (target - var_v))) if var_s > 0
             else float(n_seeds))
    videos = float(math.ceil(n_videos * var_h / target))
    return max(seeds, 1.0), max(videos, 1.0)


def significant(p_holm: float, alpha: float = 0.05) -> bool:
    """A Holm-adjusted p below alpha (in :func:`decide`: the permutation p for better / worse, TOST's for equivalent)."""
    return math.isfinite(p_holm) and p_holm < alpha


def excludes_zero(lo: float, hi: float) -> bool:
    """The other half: the 95% interval lies entirely on one side of 0."""
    return lo > 0 or hi < 0


def decide(diff: float, lo: float, hi: float, p_holm: float, p_tost_holm: float, metric: str, alpha=0.05) -> str:
    """The verdict of one comparison, A against B: ``better`` / ``worse`` (Holm-adjusted permutation p below
    alpha and the interval excludes 0), ``equivalent`` (Holm-adjusted TOST p below alpha: no difference
    beyond the margin), else ``inconclusive``. "Better" is a lower value for MAE."""
    if not all(math.isfinite(x) for x in (diff, lo, hi)):
        return "inconclusive"
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    if significant(p_holm, alpha) and excludes_zero(lo, hi):
        return "better" if sign * diff > 0 else "worse"
    if significant(p_tost_holm, alpha):
        return "equivalent"
    return "inconclusive"
