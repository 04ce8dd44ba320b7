"""The one batch format shared by every data source.

A dataset is held as ready tensors (no per-sample Python in the training loop):
for each modality a padded ``(N, T_m, d_m)`` float tensor and a ``(N, T_m)`` bool mask
(True = real step), labels ``(N,)`` and string ids. Context-window data also carries
``target``: a ``(N, T)`` bool tensor marking the utterance whose label is predicted.
Batches are index slices of the dataset, trimmed to the longest real sequence in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from miar.errors import UserError

MODALITIES: tuple[str, ...] = ("text", "audio", "vision")  # fixed iteration order everywhere


def ordered(modalities) -> tuple[str, ...]:
    """``modalities`` (names, or a dict keyed by them) in the fixed order: text, audio, vision, then others."""
    return tuple(m for m in MODALITIES if m in modalities) + tuple(m for m in modalities if m not in MODALITIES)


class DataError(UserError, ValueError):
    """Bad or inconsistent input data; the message names the file and the problem."""


@dataclass
class Batch:
    """A mini-batch: modality-keyed features and masks, labels, ids, optional target marker."""

    x: dict[str, Tensor]  # modality -> (B, T_m, d_m)
    mask: dict[str, Tensor]  # modality -> (B, T_m) bool, True = real step
    y: Tensor  # (B,)
    ids: list[str]
    target: Tensor | None = None  # (B, T) bool, context windows only

    def to(self, device: torch.device | str) -> "Batch":
        nb = device != "cpu" and str(device) != "cpu"

        def move(v: Tensor) -> Tensor:  # to CUDA from pinned memory: the copy is truly asynchronous
            return v.pin_memory().to(device, non_blocking=True) if nb and v.device.type == "cpu" else v.to(device)
        return Batch(
            x={m: move(v) for m, v in self.x.items()},
            mask={m: move(v) for m, v in self.mask.items()},
            y=move(self.y),
            ids=self.ids,
            target=None if self.target is None else move(self.target),
        )

    def __len__(self) -> int:
        return len(self.ids)


def shared_axis(batch: Batch, modalities: tuple[str, ...]) -> bool:
    """True when the modalities share one time axis: context windows, or aligned batches."""
    lengths = {batch.mask[m].shape[1] for m in modalities}
    if batch.target is not None:
        if len(lengths) != 1:
            raise ValueError(f"context windows need one time axis for all modalities, got {lengths}")
        return True
    first = batch.mask[modalities[0]]
    return len(lengths) == 1 and all(torch.equal(batch.mask[m], first) for m in modalities[1:])


def joint_mask(batch: Batch, modalities: tuple[str, ...]) -> Tensor:
    """Steps where any modality is real: (B, T) bool."""
    return torch.stack([batch.mask[m] for m in modalities], 0).any(0)


@dataclass
class ModalDataset:
    """A whole split as padded tensors; see the module docstring for shapes."""

    x: dict[str, Tensor]  # modality -> (N, T_m, d_m) float32
    mask: dict[str, Tensor]  # modality -> (N, T_m) bool
    y: Tensor  # (N,) float32
    ids: list[str]
    target: Tensor | None = None  # (N, T) bool
    meta: dict = field(default_factory=dict)  # free-form provenance (source file, split name, ...)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.y.shape != (n,):
            raise DataError(f"labels have shape {tuple(self.y.shape)}, expected ({n},)")
        for m, v in self.x.items():
            if v.ndim != 3 or v.shape[0] != n:
                raise DataError(f"{m} features have shape {tuple(v.shape)}, expected ({n}, T, d)")
            if self.mask[m].shape != v.shape[:2]:
                raise DataError(f"{m} mask shape {tuple(self.mask[m].shape)} != {tuple(v.shape[:2])}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.x)

    @property
    def dims(self) -> dict[str, int]:
        return {m: int(self.x[m].shape[-1]) for m in self.modalities}

    def subset(self, index: Tensor | np.ndarray | list[int]) -> "ModalDataset":
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ModalDataset(
            x={m: v[idx] for m, v in self.x.items()},
            mask={m: v[idx] for m, v in self.mask.items()},
            y=self.y[idx],
            ids=[self.ids[i] for i in idx.tolist()],
            target=None if self.target is None else self.target[idx],
            meta=dict(self.meta),
        )

    def select(self, modalities: tuple[str, ...] | list[str]) -> "ModalDataset":
        missing = [m for m in modalities if m not in self.x]
        if missing:
            raise DataError(f"modalities {missing} not in dataset (has {list(self.modalities)})")
        return ModalDataset(
            x={m: self.x[m] for m in modalities},
            mask={m: self.mask[m] for m in modalities},
            y=self.y, ids=self.ids, target=self.target, meta=dict(self.meta),
        )

    def batch(self, index: Tensor) -> Batch:
        """Gather rows ``index`` and trim each modality to the longest real sequence in them."""
        x, mask = {}, {}
        for m, v in self.x.items():
            mk = self.mask[m][index]  # (B, T)
            t = int(mk.any(0).nonzero().max()) + 1 if mk.any() else 1
            if self.target is not None:  # context windows keep one shared time axis
                t = mk.shape[1]
            x[m] = v[index, :t]  # (B, t, d)
            mask[m] = mk[:, :t]
        target = None if self.target is None else self.target[index]
        return Batch(x=x, mask=mask, y=self.y[index], ids=[self.ids[i] for i in index.tolist()],
                     target=target)


BUCKET_SPAN = 50  # batches per length-sorted chunk when bucketing


def real_lengths(ds: ModalDataset) -> Tensor:
    """(N,) cost proxy of each sample: the sum over modalities of its last real step + 1."""
    total = torch.zeros(len(ds), dtype=torch.long)
    for m in ds.modalities:
        mk = ds.mask[m]  # (N, T_m)
        steps = torch.arange(1, mk.shape[1] + 1)
        total += (mk.long() * steps).amax(1)
    return total


def batch_indices(ds: ModalDataset, batch_size: int, shuffle: bool = False,
                  generator: torch.Generator | None = None, drop_last: bool = False,
                  bucket: bool = False) -> list[Tensor]:
    """The index batches of one pass over ``ds``; with ``shuffle`` the order comes from ``generator``.

    ``bucket`` (with ``shuffle``, for data without context windows): the shuffled order is cut into
    chunks of ``BUCKET_SPAN`` batches, each chunk is sorted by :func:`real_lengths` and cut into
    batches, and the batches are shuffled, so a batch holds samples of similar length and trimming
    to its longest sequence removes most of the padding (unaligned data: attention cost is
    quadratic in it). Deterministic given ``generator``.
    """
    n = len(ds)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last and n > batch_size else n
    lengths = real_lengths(ds) if bucket and shuffle and ds.target is None else None
    if lengths is not None and n and int(lengths.min()) < int(lengths.max()):  # else nothing to gain
        span = BUCKET_SPAN * batch_size
        chunks = [order[a:a + span] for a in range(0, stop, span)]
        order = torch.cat([c[torch.sort(lengths[c], stable=True).indices] for c in chunks])[:stop]
        batches = [order[a:a + batch_size] for a in range(0, stop, batch_size)]
        return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return [order[a:a + batch_size] for a in range(0, stop, batch_size)]


def iterate(ds: ModalDataset, batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None, drop_last: bool = False,
            bucket: bool = False) -> Iterator[Batch]:
    """Yield the batches of :func:`batch_indices` (same arguments)."""
    for idx in batch_indices(ds, batch_size, shuffle, generator, drop_last, bucket):
        yield ds.batch(idx)


Z_CLIP = 10.0  # standardized values are clipped to +-Z_CLIP
MIN_STD = 1e-3  # a dimension with less training spread than this is only centred, not scaled


def zscore_stats(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of ``(n, d)`` training values. Dimensions that are (nearly) constant in
    training, e.g. visual units that never fire in the training videos, get scale 1: dividing by a
    tiny std would turn their rare non-zero values in other splits into z-scores of 1e6."""
    mu, sd = real.mean(0), real.std(0)
    return mu, np.where(sd < MIN_STD, 1.0, sd)


def apply_zscore(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return np.clip((x - mu) / sd, -Z_CLIP, Z_CLIP).astype(np.float32)


def pad_sequences(seqs: list[np.ndarray], dim: int, max_len: int | None = None) -> tuple[Tensor, Tensor]:
    """Right-pad a list of ``(T_i, d)`` arrays into ``(N, T, d)`` features and a ``(N, T)`` mask."""
    t = max_len if max_len is not None else max((len(s) for s in seqs), default=1)
    t = max(t, 1)
    out = np.zeros((len(seqs), t, dim), dtype=np.float32)
    mask = np.zeros((len(seqs), t), dtype=bool)
    for i, s in enumerate(seqs):
        k = min(len(s), t)
        out[i, :k] = s[:k]
        mask[i, :k] = True
    return torch.from_numpy(out), torch.from_numpy(mask)
