#!/usr/bin/env python3
"""Leakage and headroom of the real CMU-MOSI features, by probes (:mod:`miar.probes`).

    python scripts/probe_data.py [--data $MIAR_DATA] [--out results/probes] [--resamples 2000]
                                 [--probes features leakage headroom]

Writes ``features.json`` (each released feature table's shape, range and what the study's z-scoring does
to it), ``leakage.json`` (each modality's ridge probe on held-out bc training videos vs the bc test videos;
the released text and visual extractors saw the bc training labels) and ``headroom.json`` (what audio and
vision add to text where the features are honest: inside the 31 bc test videos with the released features,
and on all 93 videos with MiniLM text, which never saw MOSI labels, plus audio; by a linear ridge probe and,
under ``nonlinear``, by an RBF kernel ridge on the same folds). ``--probes`` writes only the files named.
MiniLM sentence features come from the feature cache (``miar features --encoder minilm`` makes them; this
script does if they are missing). Exit 2 with one line when the data is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from miar import probes as P  # noqa: E402
from miar.data.batch import DataError  # noqa: E402
from miar.data.mosi_files import read_mosi  # noqa: E402
from miar.data.text_features import compute_features, default_cache_dir, features_path, load_features  # noqa: E402
from miar.records import atomic_write, git_commit  # noqa: E402


def minilm_sentences(table, root) -> np.ndarray:
    """MiniLM sentence vectors aligned to the table rows (computed into the cache once if missing)."""
    cache = default_cache_dir()
    if not features_path("minilm", cache).is_file():
        compute_features("minilm", root, cache, progress=False)
    feats = load_features("minilm", cache, tokens=False)
    pos = {s: i for i, s in enumerate(feats["ids"].tolist())}
    return feats["sentence"][np.array([pos[s] for s in table.ids])].astype(np.float64)


NONLINEAR = {"learner": "RBF kernel ridge (miar.probes.rbf_ridge_predict)",
             "kernel": "exp(-sum_m s_m |z_m - z_m'|^2 / d_m) over standardised modality blocks, shares s_m adding "
                       "up to 1",
             "alphas": P.KERNEL_ALPHAS.tolist(), "added_modality_shares": list(P.KERNEL_SHARES),
             "selection": "penalty and share by leave-one-video-out error on each training fold"}


def headroom(table, minilm: np.ndarray, released: dict, learner: str, args) -> dict:
    """Both honest settings' headroom probes with ``learner``."""
    y, videos = table.y.astype(np.float64), np.array(table.videos)
    te = table.bc_part != "train"
    kw = {"resamples": args.resamples, "seed": args.seed, "learner": learner}
    return {"bc_test_released": P.headroom(released["text"][te], {"audio": released["audio"][te],
                                                                  "vision": released["vision"][te]},
                                           y[te], videos[te], **kw),
            "all_minilm_audio": P.headroom(minilm, {"audio": released["audio"]}, y, videos, **kw)}


def write_headroom(table, minilm, released, common: dict, args) -> None:
    """``headroom.json``: the linear probes' keys as before, each setting's ``nonlinear`` beside them."""
    t0 = time.time()
    head = headroom(table, minilm, released, "ridge", args)
    for key, s in headroom(table, minilm, released, "rbf", args).items():
        head[key]["nonlinear"] = {"text": s["text"], "with": s["with"]}
    atomic_write(args.out / "headroom.json", json.dumps(
        {**common, "repeats": 3, "settings": head, "nonlinear": NONLINEAR,
         "wall_time_s": round(time.time() - t0, 1)}, indent=2) + "\n")


def write_leakage(table, minilm, released, common: dict, args) -> None:
    t0 = time.time()
    leak = P.leakage({**released, "text_minilm": minilm}, table.y.astype(np.float64), np.array(table.videos),
                     table.bc_part == "train", resamples=args.resamples, seed=args.seed)
    atomic_write(args.out / "leakage.json", json.dumps({**common, "wall_time_s": round(time.time() - t0, 1),
                                                        "modalities": leak}, indent=2) + "\n")


def write_features(table, minilm, released, common: dict, args) -> None:
    """``features.json``: each released table described (:func:`miar.probes.describe_features`)."""
    out = {m: P.describe_features(x) for m, x in released.items()}
    atomic_write(args.out / "features.json", json.dumps({"commit": common["commit"], "modalities": out},
                                                        indent=2) + "\n")


WRITERS = {"features": write_features, "leakage": write_leakage, "headroom": write_headroom}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="the directory holding CMU-MOSI/ (default: $MIAR_DATA)")
    ap.add_argument("--out", type=Path, default=Path("results/probes"), help="where the JSON files go")
    ap.add_argument("--resamples", type=int, default=2000, help="video bootstrap resamples per interval")
    ap.add_argument("--seed", type=int, default=0, help="fold and resampling seed")
    ap.add_argument("--probes", nargs="+", choices=list(WRITERS), default=list(WRITERS),
                    help="which files to write (default: all three)")
    args = ap.parse_args(argv)
    try:
        table = read_mosi(args.data)
        minilm = minilm_sentences(table, args.data)
    except (DataError, OSError) as e:
        print(f"probe_data: {e}", file=sys.stderr)
        return 2
    released = {m: table.features[m].astype(np.float64) for m in ("text", "audio", "vision")}
    common = {"commit": git_commit()["commit"], "resamples": args.resamples, "seed": args.seed, "folds": 5}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.probes:
        t0 = time.time()
        WRITERS[name](table, minilm, released, common, args)
        print(f"wrote {args.out}/{name}.json ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
