#!/usr/bin/env python3
"""How often do the study's tests call a difference where there is none, and how often do they find a real one?

Simulates pairs of experiments on a test set shaped like the study's (31 videos; by default ~22 utterances each and
10 seeds per experiment, as the primary table on the standard split; ``--per-video``, ``--seeds``) and applies :mod:`miar.stats` exactly as ``miar collect`` does, for MAE:

- ``null_utterance_noise``: A and B are two seed sets of one model; seeds differ utterance by utterance.
- ``null_seed_offsets``: the same, but each seed also shifts all its predictions (seed-level variation).
- ``effect``: B's predictions carry extra noise, so A's MAE is lower by about ``--effect``.

For each scenario it reports the share of simulations in which the permutation p < 0.05, the video-bootstrap
and the hierarchical-bootstrap 95% intervals exclude zero, and the verdict rule says "better" or "worse"
(one comparison, so Holm changes nothing). Written to ``results/stats/calibration.json`` (the method chapter
reads it)::

    python scripts/calibrate_stats.py [--sims 200] [--resamples 1000] [--json results/stats/calibration.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from miar import stats as S  # noqa: E402
from miar.records import atomic_write  # noqa: E402

VIDEOS = 31  # both splits' test sets have 31 videos
SCENARIOS = {  # name -> (per-utterance seed noise, per-seed offset, extra noise on B)
    "null_utterance_noise": (0.15, 0.0, 0.0),
    "null_seed_offsets": (0.15, 0.3, 0.0),
    "effect": (0.15, 0.05, None),  # None: --effect's noise on B
}


def simulate(rng, seed_noise: float, offset: float, extra_b: float, seeds: int = 10, per_video: int = 22) -> S.Pair:
    video = np.repeat(np.arange(VIDEOS), per_video)
    n = video.size
    y = rng.normal(0, 1.5, n)
    base = 0.6 * y + 0.4 * rng.normal(0, 1, VIDEOS)[video] + rng.normal(0, 0.7, n)  # what both models share
    a = base + rng.normal(0, seed_noise, (seeds, n)) + rng.normal(0, offset, (seeds, 1))  # (S, N)
    b = base + rng.normal(0, seed_noise, (seeds, n)) + rng.normal(0, offset, (seeds, 1)) \
        + rng.normal(0, extra_b, n)
    return S.Pair(a, b, y, video)


def rates(pairs, resamples: int) -> dict:
    hits = {"permutation_p_below_0.05": 0, "video_interval_excludes_0": 0, "hierarchical_interval_excludes_0": 0,
            "verdict_better_or_worse": 0}
    diffs = []
    for i, pair in enumerate(pairs):
        d = S.point(pair)["mae"][2]
        diffs.append(d)
        p = S.sign_flip_test(pair, resamples, i)["mae"]
        lo_v, hi_v = S.percentile_interval(S.video_bootstrap(pair, resamples, i)["mae"])
        lo, hi = S.percentile_interval(S.hierarchical_bootstrap(pair, resamples, i)["mae"])
        hits["permutation_p_below_0.05"] += p < 0.05
        hits["video_interval_excludes_0"] += lo_v > 0 or hi_v < 0
        hits["hierarchical_interval_excludes_0"] += lo > 0 or hi < 0
        hits["verdict_better_or_worse"] += S.decide(d, lo, hi, p, float("nan"), "mae") in ("better", "worse")
    n = len(diffs)
    return {**{k: v / n for k, v in hits.items()}, "mean_mae_difference": float(np.mean(diffs)), "sims": n}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=200, help="simulated comparisons per scenario")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples and permutations each")
    ap.add_argument("--effect", type=float, default=0.27,
                    help="extra prediction noise on B in the effect scenario (about 0.03 lower MAE for A)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds per experiment (the primary table's 10)")
    ap.add_argument("--per-video", type=int, default=22, help="test utterances per video (686 / 31 on the standard split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=Path("results/stats/calibration.json"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start, out = time.time(), {}
    for name, (noise, offset, extra) in SCENARIOS.items():
        pairs = [simulate(rng, noise, offset, args.effect if extra is None else extra, args.seeds, args.per_video)
                 for _ in range(args.sims)]
        out[name] = rates(pairs, args.resamples)
        print(name, json.dumps(out[name]), flush=True)
    record = {"videos": VIDEOS, "utterances_per_video": args.per_video, "seeds": args.seeds, "sims": args.sims,
              "resamples": args.resamples, "effect_noise": args.effect, "seed": args.seed,
              "scenarios": {k: {"seed_noise": v[0], "seed_offset": v[1]} for k, v in SCENARIOS.items()},
              "results": out, "wall_time_s": round(time.time() - start, 1)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.json, json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
