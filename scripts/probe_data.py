#!/usr/bin/env python3
"""Leakage and headroom of the real CMU-MOSI features, by linear probes (:mod:`miar.probes`).

    python scripts/probe_data.py [--data $MIAR_DATA] [--out results/probes] [--resamples 2000]

Writes ``leakage.json`` (each modality's probe on held-out bc training videos vs the bc test videos; the
released text and visual extractors saw the bc training labels) and ``headroom.json`` (what audio and vision
add to text where the features are honest: inside the 31 bc test videos with the released features, and on
all 93 videos with MiniLM text, which never saw MOSI labels, plus audio). MiniLM sentence features come from
the feature cache (``miar features --encoder minilm`` makes them; this script does if they are missing).
Exit 2 with one line when the data is missing.
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
from miar.data.mosi_files import base_dir, read_mosi  # noqa: E402
from miar.data.text_features import compute_features, default_cache_dir, features_path, load_features  # noqa: E402
from miar.records import atomic_write, git_commit  # noqa: E402


def minilm_sentences(table, root) -> np.ndarray:
    """MiniLM sentence vectors aligned to the table rows (computed into the cache once if missing)."""
    cache = default_cache_dir(base_dir(root))
    if not features_path("minilm", cache).is_file():
        compute_features("minilm", root, cache, progress=False)
    feats = load_features("minilm", cache, tokens=False)
    pos = {s: i for i, s in enumerate(feats["ids"].tolist())}
    return feats["sentence"][np.array([pos[s] for s in table.ids])].astype(np.float64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="the directory holding CMU-MOSI/ (default: $MIAR_DATA)")
    ap.add_argument("--out", type=Path, default=Path("results/probes"), help="where the two JSON files go")
    ap.add_argument("--resamples", type=int, default=2000, help="video bootstrap resamples per interval")
    ap.add_argument("--seed", type=int, default=0, help="fold and resampling seed")
    args = ap.parse_args(argv)
    try:
        table = read_mosi(args.data)
        minilm = minilm_sentences(table, args.data)
    except (DataError, OSError) as e:
        print(f"probe_data: {e}", file=sys.stderr)
        return 2
    t0 = time.time()
    y, videos = table.y.astype(np.float64), np.array(table.videos)
    is_train = table.bc_part == "train"
    released = {m: table.features[m].astype(np.float64) for m in ("text", "audio", "vision")}
    common = {"commit": git_commit()["commit"], "resamples": args.resamples, "seed": args.seed, "folds": 5}
    leak = P.leakage({**released, "text_minilm": minilm}, y, videos, is_train, resamples=args.resamples,
                     seed=args.seed)
    te = ~is_train
    head = {"bc_test_released": P.headroom(released["text"][te], {"audio": released["audio"][te],
                                                                   "vision": released["vision"][te]},
                                           y[te], videos[te], resamples=args.resamples, seed=args.seed),
            "all_minilm_audio": P.headroom(minilm, {"audio": released["audio"]}, y, videos,
                                           resamples=args.resamples, seed=args.seed)}
    args.out.mkdir(parents=True, exist_ok=True)
    wall = round(time.time() - t0, 1)
    atomic_write(args.out / "leakage.json", json.dumps({**common, "wall_time_s": wall, "modalities": leak},
                                                       indent=2) + "\n")
    atomic_write(args.out / "headroom.json", json.dumps({**common, "repeats": 3, "settings": head}, indent=2)
                 + "\n")
    print(f"wrote {args.out}/leakage.json and headroom.json ({wall} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
