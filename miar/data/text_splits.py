"""Splits whose text modality is a backbone's token sequence (``model.text_backbone`` != ``none``).

The other modalities load as usual (standardized with training statistics); the text comes from each
source's transcripts: MOSI's ``transcripts.csv``, an MMSA pickle's ``raw_text``, or, for synthetic data,
sentences generated from the label (:func:`synthetic_texts`: word counts with MOSI's length distribution,
sentiment words in proportion to the label), then it is tokenised once (:mod:`miar.data.tokens`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from miar.data.batch import DataError, ModalDataset, ordered
from miar.data.encoders import default_cache_dir
from miar.data.mosi_files import base_dir, read_mosi
from miar.data.tokens import attach_text

POSITIVE = ("good", "great", "love", "enjoyed", "amazing", "funny", "best", "nice", "liked", "awesome")
NEGATIVE = ("bad", "boring", "hate", "awful", "worst", "stupid", "terrible", "disappointing", "weak", "dull")
NEUTRAL = ("the", "movie", "it", "was", "and", "i", "um", "so", "really", "just", "like", "that", "this", "a",
           "of", "you", "plot", "actors", "kind", "know", "then", "there", "thing", "but", "about", "scene")
MOSI_WORDS = (12.0, 0.75)  # log-normal word count (median, sigma): ~15 tokens on average, ~120 at most


def synthetic_texts(ids: list[str], y: np.ndarray, seed: int = 0) -> dict[str, str]:
    """A deterministic sentence per utterance: MOSI-like length, sentiment words drawn with probability
    rising with ``|y|`` and the label's sign."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, label in zip(ids, y.tolist()):
        n = int(np.clip(round(rng.lognormal(np.log(MOSI_WORDS[0]), MOSI_WORDS[1])), 1, 110))
        p_sent = min(abs(label) / 3.0, 1.0) * 0.4
        pool = POSITIVE if label >= 0 else NEGATIVE
        words = [pool[rng.integers(len(pool))] if rng.random() < p_sent else NEUTRAL[rng.integers(len(NEUTRAL))]
                 for _ in range(n)]
        out[i] = " ".join(words)
    return out


def cache_dir_for(cfg, root: Path) -> Path:
    """Where token ids (and extracted backbones) are cached: ``$MIAR_CACHE``, else beside the data
    (``root``: the data root, ``miar.data.data_root(cfg.data.path)``)."""
    d = cfg.data
    if os.environ.get("MIAR_CACHE"):
        return Path(os.environ["MIAR_CACHE"])
    if d.source == "mosi":
        return default_cache_dir(base_dir(root))
    if d.source in ("mmsa", "mult") and d.path:
        return default_cache_dir(Path(d.path).resolve().parent)
    return default_cache_dir(None)


def texts_for(cfg, splits: dict[str, ModalDataset], root: Path) -> dict[str, str]:
    """Utterance id -> transcript for every utterance of ``splits``."""
    d = cfg.data
    if d.source == "mosi":
        table = read_mosi(root)
        return dict(zip(table.ids, table.transcripts))
    if d.source == "synthetic":
        return {k: v for ds in splits.values() for k, v in synthetic_texts(ds.ids, ds.y.numpy(), d.synthetic.seed
                                                                             + len(ds)).items()}
    if d.source == "mmsa":
        out = {}
        for part, ds in splits.items():
            raw = ds.meta.get("raw_text")
            if raw is None:
                raise DataError(f"{d.path}: split '{part}' has no 'raw_text'; the text backbone needs transcripts")
            out.update(zip(ds.ids, raw))
        return out
    raise DataError(f"data.source={d.source}: has no transcripts for model.text_backbone={cfg.model.text_backbone}")


def build_text_splits(cfg, build_splits, root: Path) -> dict[str, ModalDataset]:
    """``build_splits(cfg)`` for the other modalities, then the text as token ids (see the module docstring);
    ``root``: the data root (``miar.data.data_root(cfg.data.path)``)."""
    d = cfg.data
    if d.context != 0:
        raise DataError("model.text_backbone needs data.context=0 (token sequences cannot share a window's axis)")
    others = tuple(m for m in d.modalities if m != "text") or ("audio",)  # a loader needs one; dropped below
    base = replace(cfg, data=replace(d, modalities=others), model=replace(cfg.model, text_backbone="none"))
    splits = build_splits(base)
    return attach_text(splits, texts_for(cfg, splits, root), cfg.model.text_backbone, cache_dir_for(cfg, root),
                       ordered(tuple(d.modalities)))


__all__ = ["build_text_splits", "cache_dir_for", "synthetic_texts", "texts_for"]
