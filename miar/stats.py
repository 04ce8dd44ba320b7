"""Comparing two experiments on one test set: single trained models, paired by seed, test videos resampled.

All runs of a study share one test set (CMU-MOSI bc split: 752 utterances of 31 videos), so an interval over
seeds alone answers "would another seed differ?" but not "would another sample of videos differ?".
Everything here is a pure function of predictions (no files).

**The estimand** is the difference between single trained models, the unit the per-seed tables and the field
report: with seeds s shared by both sides (:class:`Pair` rows, paired by seed), mean_s [metric(A_s) -
metric(B_s)]. It equals the difference of the two experiments' per-seed means (summary.csv); it is *not* the
difference of seed-averaged predictions (an ensemble), which lowers MAE by a different amount per model.

- :func:`point`: that difference on the whole test set.
- :func:`video_bootstrap`: resample whole test videos with replacement (an utterance comes with its video),
  every seed kept; recompute each seed's difference and average over seeds.
- :func:`hierarchical_bootstrap`: also resample the seeds, as pairs, in every resample, so the interval holds
  the seed-to-seed variation of the paired difference and the test-sample variation. The verdicts use this one.
- :func:`sign_flip_test`: paired permutation test; under "A and B are exchangeable within a video" the two
  experiments' predictions are swapped video by video, every seed at once (exactly enumerated with few videos).
- :func:`holm`, :func:`tost`, :func:`mdd`, :func:`needed`, :func:`decide`: multiplicity, equivalence,
  power and the verdict rule.

A resample of videos is a vector of multiplicities (how often each video was drawn). Every metric is a
function of sums over utterances, so each seed's predictions are reduced once to per-video sums
(:mod:`miar.videosums`) and a resample's metric is computed from the multiplicity-weighted sums; that equals
recomputing the metric on the resampled rows (:func:`weighted_metrics`), for every metric of
:data:`miar.metrics.METRICS`.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from miar.metrics import METRICS
from miar.videosums import metrics_from_sums, video_sums
from miar.videosums import weighted_metrics as weighted_metrics  # public here too (as before it moved)

LOWER_IS_BETTER = frozenset({"mae"})
CHUNK = 2000  # resamples evaluated at once: bounds memory to a few (CHUNK, N) float arrays
VERDICTS = ("better", "worse", "equivalent", "inconclusive")


def video_of(utterance_id: str) -> str:
    """The video of a segment id: MMSA's ``video$_$clip`` or MOSI's ``<video>_<k>``."""
    return utterance_id.split("$_$")[0] if "$_$" in utterance_id else utterance_id.rsplit("_", 1)[0]


def video_codes(ids) -> np.ndarray:
    """(N,) integer code 0..V-1 of each utterance's video, in sorted order of the video ids."""
    return np.unique([video_of(str(i)) for i in ids], return_inverse=True)[1].astype(np.int64)


@dataclass(frozen=True)
class Pair:
    """Two experiments' test predictions on the same utterances, paired by seed: row s of ``a`` (S, N) and row
    s of ``b`` (S, N) are trained with the same seed; ``y`` (N,) labels; ``video`` (N,) video codes 0..V-1.
    Both sides need the same number of rows (a paired comparison cannot be made across unequal seeds;
    :mod:`miar.comparisons` reduces both sides to their common seeds first)."""

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
        if len(self.a) == 0 or len(self.a) != len(self.b):
            raise ValueError(f"Pair: A has {len(self.a)} seed(s), B {len(self.b)}: a paired comparison needs "
                             "the same seeds (at least one) on both sides")

    @property
    def n_videos(self) -> int:
        return int(self.video.max()) + 1

    @functools.cached_property
    def sums(self) -> tuple[np.ndarray, np.ndarray]:
        """(S, V, K) per-video sums of A and of B (:func:`miar.videosums.video_sums`), computed once."""
        return video_sums(self.a, self.y, self.video), video_sums(self.b, self.y, self.video)


def _metrics(w: np.ndarray, sums: np.ndarray, w2: np.ndarray | None = None, sums2: np.ndarray | None = None):
    """metric -> (R, S) metric of each seed's model under video weights ``w`` (R, V) on ``sums`` (S, V, K),
    plus ``w2`` on ``sums2`` (the other side's videos, where a permutation swaps them in)."""
    t = np.einsum("rv,svk->rsk", w, sums)  # (R, S, K)
    if w2 is not None:
        t = t + np.einsum("rv,svk->rsk", w2, sums2)
    return metrics_from_sums(t)


def _per_seed(pair: Pair, w: np.ndarray) -> dict[str, np.ndarray]:
    """metric -> (R, S) single-model differences metric(A_s) - metric(B_s) under video weights ``w`` (R, V)."""
    ma, mb = (_metrics(w, s) for s in pair.sums)
    return {k: ma[k] - mb[k] for k in METRICS}


def _swapped(pair: Pair, flips: np.ndarray) -> dict[str, np.ndarray]:
    """metric -> (R,) mean_s [metric(A'_s) - metric(B'_s)] where A' takes B's predictions on the videos
    flagged in ``flips`` (R, V) and B' takes A's, for every seed at once."""
    sa, sb = pair.sums
    ma, mb = _metrics(1.0 - flips, sa, flips, sb), _metrics(1.0 - flips, sb, flips, sa)
    return {k: (ma[k] - mb[k]).mean(-1) for k in METRICS}


def point(pair: Pair) -> dict[str, tuple[float, float, float]]:
    """metric -> (mean over seeds of metric(A_s), the same of B, their difference) on the whole test set.
    The difference is the single-model estimand, mean_s [metric(A_s) - metric(B_s)]; it equals the difference
    of the two per-seed tables' means (summary.csv)."""
    T = np.stack(pair.sums).sum(2)  # (2, S, K): each seed's sums over all videos
    m = metrics_from_sums(T)
    return {k: (float(m[k][0].mean()), float(m[k][1].mean()), float((m[k][0] - m[k][1]).mean())) for k in METRICS}


def _video_counts(rng: np.random.Generator, v: int, r: int) -> np.ndarray:
    """(r, v) multiplicities of v videos drawn with replacement, r times."""
    return rng.multinomial(v, np.full(v, 1.0 / v), size=r).astype(np.float64)


def video_weights(rng: np.random.Generator, video: np.ndarray, r: int) -> np.ndarray:
    """(r, N) weight of each utterance in r resamples of its videos: its video's multiplicity."""
    return _video_counts(rng, int(video.max()) + 1, r)[:, video]


def _chunks(n: int):
    for start in range(0, n, CHUNK):
        yield min(CHUNK, n - start)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in METRICS}


def video_bootstrap(pair: Pair, resamples: int = 10_000, seed: int = 0) -> dict[str, np.ndarray]:
    """metric -> (R,) bootstrap distribution of mean_s [metric(A_s) - metric(B_s)], resampling test videos
    only (every seed kept): the test-sample variation of the single-model difference."""
    rng = np.random.default_rng(seed)
    parts = []
    for r in _chunks(resamples):
        w = _video_counts(rng, pair.n_videos, r)  # (r, V)
        parts.append({k: d.mean(-1) for k, d in _per_seed(pair, w).items()})
    return _concat(parts)


def hierarchical_bootstrap(pair: Pair, resamples: int = 10_000, seed: int = 0) -> dict[str, np.ndarray]:
    """As :func:`video_bootstrap`, but each resample also redraws the seeds with replacement, as pairs (seed s
    brings A_s and B_s together), so the distribution holds the seed-to-seed variation of the paired
    difference as well as the test-sample variation. The study's verdicts use this one."""
    rng = np.random.default_rng(seed)
    s = len(pair.a)
    parts = []
    for r in _chunks(resamples):
        w = _video_counts(rng, pair.n_videos, r)  # (r, V)
        c = rng.multinomial(s, np.full(s, 1.0 / s), size=r) / s  # (r, S) seed weights, summing to 1
        parts.append({k: (d * c).sum(-1) for k, d in _per_seed(pair, w).items()})
    return _concat(parts)


def sign_flip_test(pair: Pair, resamples: int = 10_000, seed: int = 0, exact_up_to: int = 12) -> dict[str, float]:
    """metric -> two-sided p-value of the paired sign-flip permutation test over videos.

    The statistic is the single-model difference mean_s [metric(A_s) - metric(B_s)]. Under the null, A and B
    are exchangeable within each video: a permutation swaps A's and B's predictions on a set of videos, for
    every seed at once (the seeds stay paired, the video is the unit that is exchanged). For MAE this is
    exactly a sign flip, per video, of the seed-averaged per-video difference of single-model absolute errors
    (the statistic is their sum over videos divided by N); the other metrics get the same permutation
    of whole videos. Why this one: the video is the unit the test set samples, and swapping a video for every
    seed at once keeps the seed pairing. It is conditional on the trained models (these seeds): seed-to-seed
    variation of the difference is not in its null distribution, so with large seed effects it fires too often
    (scripts/calibrate_stats.py); the hierarchical interval carries that variation, and the verdict rule
    needs both. With at most ``exact_up_to`` videos all 2^V swaps are enumerated and p is exact;
    otherwise p = (1 + #{|T*| >= |T|}) / (1 + R) over random swaps.
    """
    v = pair.n_videos
    observed = {k: float(d[0].mean()) for k, d in _per_seed(pair, np.ones((1, v))).items()}
    exact = v <= exact_up_to
    if exact:
        flips = np.array(list(itertools.product((0, 1), repeat=v)), dtype=np.float64)
        batches = [flips[i:i + CHUNK] for i in range(0, len(flips), CHUNK)]
    else:
        rng = np.random.default_rng(seed)
        batches = [rng.integers(0, 2, size=(r, v)).astype(np.float64) for r in _chunks(resamples)]
    hits = dict.fromkeys(METRICS, 0)
    total = 0
    for flips in batches:
        stats = _swapped(pair, flips)
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
