"""Checks shared by every loader, a printable summary, and format detection for ``miar data check``.

:func:`validate_splits` enforces what the rest of the package assumes of a loaded dataset:
required splits present and non-empty, the same modalities and feature dims in every split,
finite labels inside [-3, 3], unique ids within a split, and per modality a non-empty time and feature axis,
at least one real (masked-in) step in every sample and finite features. Every failure is a one-line
:class:`DataError` ``"<source>: <problem>"``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from miar.data.batch import DataError, ModalDataset

SPLITS: tuple[str, ...] = ("train", "valid", "test")
LABEL_RANGE = (-3.0, 3.0)
LABEL_TOL = 1e-6
MOSI_CSV_MARKERS = ("text_train0.csv", "audio_train0.csv", "video_train0.csv")
CHUNK_ROWS = 1024


def _check_split(ds: ModalDataset, source: str, name: str) -> None:
    """Per-split checks: non-empty, finite labels in range, unique ids."""
    if len(ds) == 0:
        raise DataError(f"{source}: split '{name}' is empty")
    y = ds.y.detach().cpu().numpy().astype(np.float64)  # (N,)
    bad = ~np.isfinite(y)
    if bad.any():
        raise DataError(f"{source}: split '{name}' has {int(bad.sum())} non-finite labels "
                        f"(first at index {int(np.flatnonzero(bad)[0])})")
    lo, hi = LABEL_RANGE
    out = (y < lo - LABEL_TOL) | (y > hi + LABEL_TOL)
    if out.any():
        raise DataError(f"{source}: split '{name}' has {int(out.sum())} labels outside [{lo:g}, {hi:g}] "
                        f"(min {y.min():.4g}, max {y.max():.4g})")
    if len(set(ds.ids)) != len(ds.ids):
        dup = next(i for i, c in Counter(ds.ids).items() if c > 1)
        raise DataError(f"{source}: split '{name}' has duplicate ids (e.g. {dup!r})")
    for m in ds.modalities:
        _check_features(ds, m, source, name)


def _check_features(ds: ModalDataset, m: str, source: str, name: str) -> None:
    """A modality training can use: a time axis, a real step in every sample, finite values."""
    x, mask = ds.x[m], ds.mask[m]  # (N, T, d), (N, T)
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"{source}: split '{name}' {m} features have shape {tuple(x.shape)}: "
                        f"a zero-length {'time axis' if x.shape[1] == 0 else 'feature axis'}")
    empty = ~mask.any(1)  # (N,) samples with no real step
    if empty.any():
        first = ds.ids[int(empty.nonzero()[0, 0])]
        raise DataError(f"{source}: split '{name}' has {int(empty.sum())} samples whose {m} mask is all false "
                        f"(no real step; first {first!r})")
    for a in range(0, len(ds), CHUNK_ROWS):  # chunks: a memory-mapped split is not copied whole
        bad = ~np.isfinite(x[a:a + CHUNK_ROWS].numpy())
        if bad.any():
            row = a + int(np.argwhere(bad)[0, 0])
            raise DataError(f"{source}: split '{name}' has non-finite {m} features (first in sample "
                            f"{ds.ids[row]!r})")


def validate_splits(splits: dict[str, ModalDataset], source: str,
                    required: tuple[str, ...] = SPLITS) -> None:
    """Raise :class:`DataError` ``"<source>: ..."`` if ``splits`` breaks a dataset invariant."""
    for name in required:
        if name not in splits:
            raise DataError(f"{source}: missing split '{name}' (has {sorted(splits)})")
    if not splits:
        raise DataError(f"{source}: no splits")
    ref_name = next(iter(splits))
    ref = splits[ref_name]
    for name, ds in splits.items():
        _check_split(ds, source, name)
        if ds.modalities != ref.modalities:
            raise DataError(f"{source}: split '{name}' has modalities {list(ds.modalities)}, "
                            f"split '{ref_name}' has {list(ref.modalities)}")
        for m in ds.modalities:
            if ds.dims[m] != ref.dims[m]:
                raise DataError(f"{source}: {m} feature dim is {ds.dims[m]} in split '{name}' "
                                f"but {ref.dims[m]} in split '{ref_name}'")


def _label_line(name: str, ds: ModalDataset) -> str:
    y = ds.y.double().numpy()  # (N,)
    return (f"  {name:<6} n={len(ds):<6d} mean {y.mean():+.3f}  std {y.std():.3f}  "
            f"min {y.min():+.2f}  max {y.max():+.2f}  positive {np.mean(y > 0):.3f}  "
            f"zero {np.mean(y == 0):.3f}")


def _modality_line(m: str, splits: dict[str, ModalDataset]) -> str:
    first = next(iter(splits.values()))
    t_max = max(int(ds.x[m].shape[1]) for ds in splits.values())
    real = np.concatenate([ds.mask[m].sum(1).numpy() for ds in splits.values()])  # (N_all,)
    return (f"  {m:<6} dim {first.dims[m]:<4d} padded T {t_max:<4d} "
            f"real steps mean {real.mean():.1f}  max {real.max()}")


def summarize(splits: dict[str, ModalDataset]) -> str:
    """A short multi-line summary: split sizes, modality dims/lengths, label statistics."""
    if not splits:
        return "no splits"
    first = next(iter(splits.values()))
    sizes = " | ".join(f"{k}: {len(v)}" for k, v in splits.items())
    lines = [f"splits: {sizes}", "modalities:"]
    lines += [_modality_line(m, splits) for m in first.modalities]
    lines.append("labels:")
    lines += [_label_line(k, v) for k, v in splits.items()]
    return "\n".join(lines)


__all__ = ["SPLITS", "validate_splits", "summarize"]
