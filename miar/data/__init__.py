"""Data sources, all in one batch format (:mod:`miar.data.batch`). ``build_splits`` reads the config."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from miar.data.batch import (
    MODALITIES,
    Batch,
    DataError,
    ModalDataset,
    apply_zscore,
    batch_indices,
    iterate,
    zscore_stats,
)
from miar.data.mosi import load_mosi
from miar.data.pickles import load_mmsa_pickle, load_mult_pickle
from miar.data.synthetic import make_synthetic

REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def data_root(path: str | None = None) -> Path:
    """The data directory: an explicit path, else ``$MIAR_DATA``, else ``data/`` in the repository."""
    return Path(path or os.environ.get("MIAR_DATA") or REPO_DATA)


def standardize(splits: dict[str, ModalDataset]) -> dict[str, ModalDataset]:
    """z-score every modality with the training split's real steps (see ``zscore_stats``)."""
    train = splits["train"]
    for m in train.modalities:
        mu, sd = zscore_stats(train.x[m][train.mask[m]].numpy())  # over real training steps
        for ds in splits.values():
            ds.x[m] = torch.from_numpy(_zscore_chunked(ds.x[m].numpy(), ds.mask[m].numpy(), mu, sd))  # (N, T, d)
    return splits


def _zscore_chunked(x: np.ndarray, mask: np.ndarray, mu: np.ndarray, sd: np.ndarray, rows: int = 1024) -> np.ndarray:
    """``apply_zscore`` then padding zeroed, ``rows`` samples at a time: the same values as on the whole array, but
    the temporaries are one chunk's, not three copies of a MOSEI-size modality (a memory-mapped source stays
    mapped instead of being copied whole)."""
    out = np.empty(x.shape, dtype=np.float32)
    for a in range(0, len(x), rows):
        out[a:a + rows] = apply_zscore(x[a:a + rows], mu, sd) * mask[a:a + rows, :, None]
    return out


def build_splits(cfg) -> dict[str, ModalDataset]:
    """train/valid/test datasets for ``cfg.data`` restricted to ``cfg.data.modalities``; with
    ``model.text_backbone`` the text modality is that backbone's token ids (:mod:`miar.data.text_splits`)."""
    d = cfg.data
    if cfg.model.text_backbone != "none" and "text" in d.modalities:
        from miar.data.text_splits import build_text_splits

        return build_text_splits(cfg, build_splits, data_root(d.path))
    if d.source == "synthetic":
        s = d.synthetic
        splits = make_synthetic(s.preset, seed=s.seed, n_train=s.n_train, n_valid=s.n_valid,
                                n_test=s.n_test, aligned=s.aligned, seq_len=s.seq_len, noise=s.noise,
                                strength=s.strength, shift=s.shift, dims=s.dims,
                                warp=s.warp, interaction=s.interaction)
    elif d.source == "mosi":
        return load_mosi(data_root(d.path), split=d.split, modalities=tuple(d.modalities),
                         text_features=d.text_features, context=d.context,
                         n_valid_videos=d.n_valid_videos, valid_seed=d.valid_seed,
                         standardize=d.standardize, text_granularity=d.text_granularity,
                         cv=(d.cv_folds, d.cv_fold, d.cv_repeat))
    elif d.source in ("mmsa", "mult"):
        if not d.path:
            raise DataError(f"data.source={d.source} needs data.path (the pickle file)")
        from miar.data.convert import is_converted, load_converted  # `miar data convert` output

        splits = (load_converted(d.path, expect=d.source) if is_converted(d.path)
                  else (load_mmsa_pickle if d.source == "mmsa" else load_mult_pickle)(d.path))
    else:  # pragma: no cover - the config rejects other values
        raise DataError(f"unknown data source {d.source!r}")
    splits = {k: v.select(tuple(d.modalities)) for k, v in splits.items()}
    return standardize(splits) if d.standardize else splits


__all__ = ["MODALITIES", "Batch", "DataError", "ModalDataset", "build_splits", "data_root",
           "batch_indices", "iterate", "load_mmsa_pickle", "load_mosi", "load_mult_pickle", "make_synthetic",
           "standardize"]
