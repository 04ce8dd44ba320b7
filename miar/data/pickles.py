"""Loaders for the feature pickles the field already has: MMSA and MulT.

MMSA (``aligned_50.pkl``, ``unaligned_50.pkl``): ``{split: {"text" (N, 50, 768), "text_bert"
(N, 3, 50) ids/attention mask/segments, "audio" (N, T_a, d_a), "vision" (N, T_v, d_v),
"audio_lengths", "vision_lengths" (N,), "regression_labels" (N,), "id", "raw_text", ...}}``.
Text mask = attention mask ``text_bert[:, 1] > 0``; audio/vision masks from the lengths,
or, where lengths are absent, from the non-zero steps.

MulT (``mosi_data.pkl``, ``*_noalign.pkl``): ``{split: {"text" (N, T, 300), "audio", "vision",
"labels" (N, 1, 1), "id" (N,) or (N, k) byte strings}}``. Masks = steps whose features are not
all exactly zero (padding); a 2-d id row is joined with ``"$_$"``.

Both: every mask keeps at least one real step per sample; non-finite feature values (MMSA audio
holds -inf) become 0 with one warning per file; the result passes :func:`validate_splits`.
Files are opened with :func:`miar.data.safe_pickle.safe_load` only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from miar.data.batch import MODALITIES, DataError, ModalDataset
from miar.data.safe_pickle import safe_load
from miar.data.validate import SPLITS, validate_splits

MMSA_LABEL_KEY = "regression_labels"
MULT_LABEL_KEY = "labels"
ID_JOIN = "$_$"


def pickle_format(obj: object) -> str | None:
    """``"mmsa"`` or ``"mult"`` from the keys of the first split of ``obj``, else None."""
    if not isinstance(obj, dict):
        return None
    split = next((obj[s] for s in SPLITS if isinstance(obj.get(s), dict)), None)
    if split is None:
        return None
    if MMSA_LABEL_KEY in split:
        return "mmsa"
    if MULT_LABEL_KEY in split:
        return "mult"
    return None


def load_mmsa_pickle(path: str | Path) -> dict[str, ModalDataset]:
    """Load an MMSA ``aligned_50.pkl`` / ``unaligned_50.pkl`` into train/valid/test datasets."""
    return mmsa_from_object(safe_load(path), str(path))


def load_mult_pickle(path: str | Path) -> dict[str, ModalDataset]:
    """Load a MulT ``mosi_data.pkl`` / ``*_noalign.pkl`` into train/valid/test datasets."""
    return mult_from_object(safe_load(path), str(path))


def load_pickle_object(obj: object, source: str) -> dict[str, ModalDataset]:
    """Dispatch an already unpickled object to the MMSA or MulT reader."""
    fmt = pickle_format(obj)
    if fmt == "mmsa":
        return mmsa_from_object(obj, source)
    if fmt == "mult":
        return mult_from_object(obj, source)
    raise DataError(f"{source}: unknown pickle structure (no '{MMSA_LABEL_KEY}' or '{MULT_LABEL_KEY}')")


def mmsa_from_object(obj: object, source: str) -> dict[str, ModalDataset]:
    """Read an unpickled MMSA dict (see module docstring); may modify its arrays in place."""
    return _read_splits(obj, source, "mmsa")


def mult_from_object(obj: object, source: str) -> dict[str, ModalDataset]:
    """Read an unpickled MulT dict (see module docstring); may modify its arrays in place."""
    return _read_splits(obj, source, "mult")


# --- shared pieces -------------------------------------------------------------------------


def _read_splits(obj: object, source: str, fmt: str) -> dict[str, ModalDataset]:
    if not isinstance(obj, dict):
        raise DataError(f"{source}: expected a dict of splits, got {type(obj).__name__}")
    splits, nonfinite = {}, 0
    for name in SPLITS:
        d = obj.get(name)
        if d is None:
            raise DataError(f"{source}: missing split '{name}' (has {sorted(map(str, obj))})")
        if not isinstance(d, dict):
            raise DataError(f"{source}: split '{name}' is a {type(d).__name__}, expected a dict")
        reader = _mmsa_split if fmt == "mmsa" else _mult_split
        splits[name], n_bad = reader(d, source, name)
        nonfinite += n_bad
    if nonfinite:
        warnings.warn(f"{source}: replaced {nonfinite} non-finite feature values by 0", stacklevel=3)
    validate_splits(splits, source)
    return splits


def _need(d: dict, key: str, source: str, split: str) -> Any:
    if key not in d:
        raise DataError(f"{source}: split '{split}' has no key '{key}' (has {sorted(map(str, d))})")
    return d[key]


def _features(arr: Any, where: str) -> tuple[np.ndarray, int]:
    """``(N, T, d)`` float32 array with non-finite values set to 0, and how many there were."""
    try:
        a = np.asarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise DataError(f"{where} is not numeric ({e})") from None
    if a.ndim != 3 or 0 in a.shape[1:]:
        raise DataError(f"{where} has shape {a.shape}, expected (N, T, d) with T, d >= 1")
    finite = np.isfinite(a)
    n_bad = int(a.size - np.count_nonzero(finite))
    if n_bad:
        a = np.where(finite, a, np.float32(0))
    return np.ascontiguousarray(a), n_bad


def _check_sizes(sizes: dict[str, int], source: str, split: str) -> int:
    """Common first dimension of the arrays in a split, or DataError listing them."""
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{k} {v}" for k, v in sizes.items())
        raise DataError(f"{source}: split '{split}' sizes disagree across keys ({listing})")
    return next(iter(sizes.values()))


def _len(v: Any, where: str) -> int:
    """First dimension of an array or list, or DataError for a scalar."""
    shape = np.shape(v) if not isinstance(v, (list, tuple)) else (len(v),)
    if not shape:
        raise DataError(f"{where} is a scalar, expected one entry per sample")
    return int(shape[0])


def _id_str(v: Any) -> str:
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode("utf-8", errors="replace")
    return str(v)


def _ids(arr: Any, where: str) -> list[str]:
    """Ids as str: bytes decoded, rows of a 2-d id array joined with ``"$_$"``."""
    a = np.asarray(arr, dtype=object) if not isinstance(arr, np.ndarray) else arr
    if a.ndim == 1:
        return [_id_str(v) for v in a]
    if a.ndim == 2:
        return [ID_JOIN.join(_id_str(v) for v in row) for row in a]
    raise DataError(f"{where} has shape {a.shape}, expected (N,) or (N, k)")


def _labels(arr: Any, n: int, where: str) -> np.ndarray:
    """``(N,)`` float32 labels from ``(N,)``, ``(N, 1)`` or ``(N, 1, 1)``."""
    try:
        y = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{where} is not numeric ({e})") from None
    if y.ndim == 0 or y.shape[0] != n or y.size != n:
        raise DataError(f"{where} has shape {y.shape}, expected ({n},) or ({n}, 1, 1)")
    return y.reshape(n).astype(np.float32)


def _keep_one(mask: np.ndarray) -> np.ndarray:
    """Mark step 0 real in rows with no real step, so pooling never divides by zero."""
    mask[~mask.any(1), 0] = True
    return mask


def _nonzero_mask(x: np.ndarray) -> np.ndarray:
    return _keep_one(np.any(x != 0, axis=2))  # (N, T)


def _length_mask(lengths: Any, n: int, t: int, where: str) -> np.ndarray:
    """``(N, T)`` prefix mask from lengths, clipped to [1, T]."""
    try:
        ln = np.asarray(lengths, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise DataError(f"{where} is not numeric ({e})") from None
    if ln.shape != (n,) or not np.isfinite(ln).all():
        raise DataError(f"{where} has shape {ln.shape} or non-finite values, expected ({n},) finite")
    ln = np.clip(ln.astype(np.int64), 1, max(t, 1))
    return np.arange(t)[None, :] < ln[:, None]  # (N, T)


def _dataset(x: dict[str, np.ndarray], mask: dict[str, np.ndarray], y: np.ndarray,
             ids: list[str], meta: dict) -> ModalDataset:
    return ModalDataset(
        x={m: torch.from_numpy(x[m]) for m in MODALITIES},
        mask={m: torch.from_numpy(np.ascontiguousarray(mask[m])) for m in MODALITIES},
        y=torch.from_numpy(y), ids=ids, meta=meta)


# --- the two formats -----------------------------------------------------------------------


def _load_features(d: dict, source: str, split: str) -> tuple[dict[str, np.ndarray], int]:
    x, n_bad = {}, 0
    for m in MODALITIES:
        x[m], k = _features(_need(d, m, source, split), f"{source}: split '{split}' key '{m}'")
        n_bad += k
    return x, n_bad


def _common(d: dict, source: str, split: str, label_key: str, optional: tuple[str, ...] = ()):
    """Features, ids and labels of one split, every size checked against the others (and against the
    ``optional`` keys present): -> (x, n_bad, ids, y, n, where)."""
    x, n_bad = _load_features(d, source, split)
    where = f"{source}: split '{split}' key"
    ids = _ids(_need(d, "id", source, split), f"{where} 'id'")
    labels = _need(d, label_key, source, split)
    sizes = {m: x[m].shape[0] for m in MODALITIES}
    sizes.update({label_key: _len(labels, f"{where} '{label_key}'"), "id": len(ids)})
    sizes.update({k: _len(d[k], f"{where} '{k}'") for k in optional if d.get(k) is not None})
    n = _check_sizes(sizes, source, split)
    return x, n_bad, ids, _labels(labels, n, f"{where} '{label_key}'"), n, where


def _mmsa_split(d: dict, source: str, split: str) -> tuple[ModalDataset, int]:
    x, n_bad, ids, y, n, where = _common(d, source, split, MMSA_LABEL_KEY,
                                         ("text_bert", "audio_lengths", "vision_lengths", "raw_text"))
    mask = {"text": _mmsa_text_mask(d.get("text_bert"), x["text"], f"{where} 'text_bert'")}
    for m in ("audio", "vision"):
        lengths = d.get(f"{m}_lengths")
        t = x[m].shape[1]
        mask[m] = (_nonzero_mask(x[m]) if lengths is None
                   else _length_mask(lengths, n, t, f"{where} '{m}_lengths'"))
    meta = {"source": source, "split": split, "format": "mmsa"}
    if d.get("raw_text") is not None:
        meta["raw_text"] = [_id_str(s) for s in d["raw_text"]]
    if d.get("text_bert") is not None:  # token ids and attention mask, for a text backbone (miar.data.text_splits)
        meta["text_bert"] = np.asarray(d["text_bert"])[:, :2].astype(np.int64)  # (N, 2, T)
    return _dataset(x, mask, y, ids, meta), n_bad


def _mmsa_text_mask(text_bert: Any, text: np.ndarray, where: str) -> np.ndarray:
    """Attention mask ``text_bert[:, 1, :] > 0`` (N, T), or all steps real without it."""
    n, t = text.shape[:2]
    if text_bert is None:
        return np.ones((n, t), dtype=bool)
    tb = np.asarray(text_bert)
    if tb.ndim != 3 or tb.shape[1] < 2 or tb.shape[2] != t:
        raise DataError(f"{where} has shape {tb.shape}, expected ({n}, 3, {t})")
    return _keep_one(tb[:, 1, :] > 0)  # (N, T)


def _mult_split(d: dict, source: str, split: str) -> tuple[ModalDataset, int]:
    x, n_bad, ids, y, n, where = _common(d, source, split, MULT_LABEL_KEY)
    mask = {m: _nonzero_mask(x[m]) for m in MODALITIES}
    meta = {"source": source, "split": split, "format": "mult"}
    return _dataset(x, mask, y, ids, meta), n_bad
