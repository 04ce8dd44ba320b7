"""Writers of synthetic splits (:mod:`miar.data.synthetic`) as plain pickles in the MMSA / MulT layouts the
loaders (:mod:`miar.data.pickles`) read."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from miar.data.batch import MODALITIES, DataError, ModalDataset


def _last_real(mask: np.ndarray) -> np.ndarray:
    """(N,) index of the last real step + 1 (a prefix mask's length)."""
    t = mask.shape[1]
    return np.where(mask.any(1), t - np.argmax(mask[:, ::-1], axis=1), 0).astype(np.int64)


def _need_all(ds: ModalDataset, name: str) -> None:
    if ds.modalities != MODALITIES:
        raise DataError(f"split '{name}' has modalities {list(ds.modalities)}, "
                        f"writers need {list(MODALITIES)}")


def _annotation(v: float) -> str:
    return "Positive" if v > 0 else "Negative" if v < 0 else "Neutral"


def _mmsa_split(ds: ModalDataset, name: str) -> dict:
    _need_all(ds, name)
    tmask = ds.mask["text"].numpy()  # (N, T)
    n, t = tmask.shape
    text_bert = np.zeros((n, 3, t), dtype=np.float32)  # ids / attention mask / segments
    text_bert[:, 0] = np.where(tmask, 1000 + np.arange(t)[None, :], 0)
    text_bert[:, 1] = tmask
    y = ds.y.numpy().astype(np.float32)
    return {"raw_text": list(ds.meta.get("raw_text", [""] * n)),
            "text": ds.x["text"].numpy(), "text_bert": text_bert,
            "audio": ds.x["audio"].numpy(), "vision": ds.x["vision"].numpy(),
            "audio_lengths": _last_real(ds.mask["audio"].numpy()).tolist(),
            "vision_lengths": _last_real(ds.mask["vision"].numpy()).tolist(),
            "id": np.array(ds.ids, dtype=object),
            "annotations": [_annotation(v) for v in y.tolist()],
            "regression_labels": y}


def _mult_split(ds: ModalDataset, name: str) -> dict:
    _need_all(ds, name)
    x = {m: (ds.x[m] * ds.mask[m][..., None]).numpy().astype(np.float32) for m in MODALITIES}
    return {**x, "labels": ds.y.numpy().astype(np.float32).reshape(-1, 1, 1),  # (N, 1, 1)
            "id": np.array([i.encode("utf-8") for i in ds.ids], dtype=bytes)}


def write_mmsa_pickle(splits: dict[str, ModalDataset], path: str | Path) -> None:
    """Write ``splits`` as an MMSA ``aligned_50.pkl``-style pickle (masks kept via lengths)."""
    with open(path, "wb") as fh:
        pickle.dump({k: _mmsa_split(v, k) for k, v in splits.items()}, fh, protocol=4)


def write_mult_pickle(splits: dict[str, ModalDataset], path: str | Path) -> None:
    """Write ``splits`` as a MulT ``mosi_data.pkl``-style pickle (padding written as zeros)."""
    with open(path, "wb") as fh:
        pickle.dump({k: _mult_split(v, k) for k, v in splits.items()}, fh, protocol=4)
