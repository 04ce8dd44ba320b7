"""The released utterance-level CMU-MOSI features (bc-LSTM, Poria et al. 2017).

``load_mosi`` turns the table of :func:`miar.data.mosi_files.read_mosi` (all 2199 utterances) into
train/valid/test ``ModalDataset``s: the bc or standard split, validation videos, optional context
windows of neighbouring utterances, offline text-encoder features, standardization.

Leakage: the released text CNN and visual 3D-CNN features were trained with labels on the
bc-LSTM training split, so they may only be evaluated on the bc split (``split="bc"``), or cross-fitted
inside its 31 test videos, where they are honest (``split="bc_test_cv"``, :mod:`miar.data.cv`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from miar.data.batch import MODALITIES, DataError, ModalDataset, apply_zscore, zscore_stats
from miar.data.cv import ALL_SALT, cv_parts
from miar.data.mosi_files import (  # noqa: F401 (DIMS, base_dir, mosi_dir: re-exported)
    DIMS,
    FOLDS_FILE,
    MosiTable,
    base_dir,
    mosi_dir,
    read_mosi,
)
from miar.data.text_features import default_cache_dir, load_features

BC_SIZES = (1447, 752)  # bc-LSTM train / test utterances (62 / 31 videos)
STANDARD_SIZES = (1284, 229, 686)  # CMU-MultimodalSDK folds (52 / 10 / 31 videos)
ENCODERS = ("minilm", "mpnet", "static")
LEAK_MESSAGE = (
    "split='{split}' refuses the released {what} features: the text CNN and visual 3D-CNN "
    "extractors were trained with labels on the bc-LSTM training split, which contains 24 of the "
    "standard split's 31 test videos (558 of 686 test utterances) and 62 of the 93 videos all_cv tests on. "
    "Use split='bc', or text_features='minilm'|'mpnet'|'static' without 'vision'."
)


def split_videos(table: MosiTable, split: str, n_valid_videos: int, valid_seed: int,
                 cv: tuple[int, int, int] = (5, 0, 0)) -> dict[str, list[str]]:
    """Sorted video ids of train/valid/test for ``split`` ("bc", "standard", "bc_test_cv" or "all_cv").

    For "bc" the validation videos are ``n_valid_videos`` whole videos drawn from the bc training
    videos with ``numpy.random.default_rng(valid_seed)``; the default seed keeps them fixed across
    model seeds, so every run selects checkpoints on the same held-out videos. For "standard"
    the fixed SDK folds are used and ``n_valid_videos``/``valid_seed`` are ignored. For "bc_test_cv", ``cv`` =
    (folds, fold, repeat) picks one fold of the grouped cross-validation inside the 31 bc test videos
    (:func:`miar.data.cv.cv_parts`; validation: ``n_valid_videos`` of the training folds' videos); "all_cv" does
    the same over all 93 videos.
    """
    if split == "standard":
        if table.folds is None:
            raise DataError(f"{FOLDS_FILE}: missing file (needed for split='standard')")
        return {k: sorted(v) for k, v in table.folds.items()}
    if split == "all_cv":
        try:
            return cv_parts(sorted(set(table.videos)), cv[0], cv[1], cv[2], n_valid_videos, valid_seed, ALL_SALT)
        except ValueError as e:
            raise DataError(f"split='all_cv': {e}") from None
    if split not in ("bc", "bc_test_cv"):
        raise DataError(f"split must be 'bc', 'standard', 'bc_test_cv' or 'all_cv', got {split!r}")
    train = sorted({v for v, p in zip(table.videos, table.bc_part) if p == "train"})
    test = sorted({v for v, p in zip(table.videos, table.bc_part) if p == "test"})
    if split == "bc_test_cv":
        try:
            return cv_parts(test, cv[0], cv[1], cv[2], n_valid_videos, valid_seed)
        except ValueError as e:
            raise DataError(f"split='bc_test_cv': {e}") from None
    if not 1 <= n_valid_videos < len(train):
        raise DataError(f"data.n_valid_videos: {n_valid_videos} is outside [1, {len(train) - 1}] "
                        f"(the bc split has {len(train)} training videos)")
    valid = set(np.random.default_rng(valid_seed).choice(train, size=n_valid_videos, replace=False).tolist())
    return {"train": [v for v in train if v not in valid], "valid": sorted(valid), "test": test}


def split_rows(table: MosiTable, videos: list[str]) -> np.ndarray:
    """Row numbers of the utterances of ``videos``, ordered by (video id, utterance index)."""
    keep = set(videos)
    rows = [i for i, v in enumerate(table.videos) if v in keep]
    return np.array(sorted(rows, key=lambda i: (table.videos[i], table.index[i])), dtype=np.int64)


def context_windows(videos: list[str], context: int) -> tuple[np.ndarray, np.ndarray]:
    """Window positions for rows already grouped by video: ``(N, T)`` indices and validity mask."""
    n, offsets = len(videos), np.arange(-context, context + 1)
    start, pos = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    length = np.zeros(n, dtype=np.int64)
    i = 0
    while i < n:
        j = i
        while j < n and videos[j] == videos[i]:
            j += 1
        start[i:j], pos[i:j], length[i:j] = i, np.arange(j - i), j - i
        i = j
    p = pos[:, None] + offsets[None, :]  # (N, T) position within the video
    valid = (p >= 0) & (p < length[:, None])
    return np.where(valid, start[:, None] + p, 0), valid


def window(feat: np.ndarray, idx: np.ndarray, valid: np.ndarray) -> torch.Tensor:
    """Gather ``(N, d)`` utterance features into ``(N, T, d)`` windows, zero outside the video."""
    return torch.from_numpy(np.where(valid[..., None], feat[idx], 0).astype(np.float32))


def zscore(parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Z-score every part with the per-dimension statistics of ``parts['train']`` (see zscore_stats)."""
    mu, sd = zscore_stats(parts["train"])
    return {k: apply_zscore(v, mu, sd) for k, v in parts.items()}


def encoder_text(table: MosiTable, text_features: str, cache_dir, root, tokens: bool) -> dict[str, np.ndarray]:
    """Cached encoder features aligned to the table rows: ``sentence`` (and ``tokens``, ``lengths``)."""

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    feats = load_features(text_features, cache, tokens=tokens)
    pos = {s: i for i, s in enumerate(feats["ids"].tolist())}
    missing = [s for s in table.ids if s not in pos]
    if missing:
        raise DataError(f"mosi_{text_features}.npz: no features for segments {missing[:5]}; "
                        f"re-run `miar features --encoder {text_features}`")
    order = np.array([pos[s] for s in table.ids])
    return {k: feats[k][order] for k in ("sentence", "tokens", "lengths") if k in feats}


def token_text(enc: dict, rows: dict[str, np.ndarray], standardize: bool) -> dict[str, tuple]:
    """Per-token encoder states of every part as ``(n, L, d)`` tensors and ``(n, L)`` masks."""
    out = {}
    for part, r in rows.items():
        lengths = enc["lengths"][r]
        t = max(int(lengths.max(initial=1)), 1)
        out[part] = (enc["tokens"][r, :t].astype(np.float32), np.arange(t)[None, :] < lengths[:, None])
    if standardize:
        real = out["train"][0][out["train"][1]]  # (n_tokens, d) real training tokens only
        mu, sd = zscore_stats(real)
        out = {k: (apply_zscore(x, mu, sd), m) for k, (x, m) in out.items()}
    for x, m in out.values():
        x[~m] = 0.0
    return {k: (torch.from_numpy(x.astype(np.float32)), torch.from_numpy(m)) for k, (x, m) in out.items()}


def check_args(split: str, modalities, text_features: str, context: int, granularity: str) -> None:
    """Validate ``load_mosi`` arguments, including the leakage guard."""
    if any(m not in MODALITIES for m in modalities) or not modalities:
        raise DataError(f"modalities must be a non-empty subset of {MODALITIES}, got {modalities}")
    if text_features not in ("cnn",) + ENCODERS:
        raise DataError(f"text_features must be 'cnn' or one of {ENCODERS}, got {text_features!r}")
    if context < 0:
        raise DataError(f"context must be >= 0, got {context}")
    if granularity not in ("utterance", "token"):
        raise DataError(f"text_granularity must be 'utterance' or 'token', got {granularity!r}")
    if granularity == "token" and (context != 0 or text_features == "cnn"):
        raise DataError("text_granularity='token' needs context=0 and an encoder text_features")
    if split in ("standard", "all_cv") and "vision" in modalities:
        raise DataError(LEAK_MESSAGE.format(what="visual 3D-CNN", split=split))
    if split in ("standard", "all_cv") and "text" in modalities and text_features == "cnn":
        raise DataError(LEAK_MESSAGE.format(what="text CNN", split=split))


def load_mosi(root=None, *, split: str = "bc", modalities=("text", "audio", "vision"),
              text_features: str = "cnn", context: int = 0, n_valid_videos: int = 10, valid_seed: int = 0,
              standardize: bool = True, cache_dir=None, text_granularity: str = "utterance",
              cv: tuple[int, int, int] = (5, 0, 0)) -> dict[str, ModalDataset]:
    """CMU-MOSI as train/valid/test ``ModalDataset``s; samples ordered by (video, utterance index).

    ``context`` neighbours of the same video on each side give windows of T = 2*context+1 steps
    (``target`` marks the centre; features only, never neighbours' labels). With ``standardize``
    every modality is z-scored with training-split statistics. Leakage: the module docstring; ``cv``: split_videos.
    """
    check_args(split, tuple(modalities), text_features, context, text_granularity)
    modalities = tuple(m for m in MODALITIES if m in modalities)  # fixed order
    table = read_mosi(root)
    rows = {k: split_rows(table, v) for k, v in split_videos(table, split, n_valid_videos, valid_seed, cv).items()}
    feats = {m: table.features[m] for m in modalities}
    tokens = None
    if "text" in modalities and text_features != "cnn":
        enc = encoder_text(table, text_features, cache_dir, root, tokens=text_granularity == "token")
        feats["text"] = enc["sentence"].astype(np.float32)
        tokens = token_text(enc, rows, standardize) if text_granularity == "token" else None
    per = {m: {k: f[r] for k, r in rows.items()} for m, f in feats.items()}  # modality -> part -> (n, d)
    if standardize:
        per = {m: zscore(p) for m, p in per.items()}
    out = {}
    for k, r in rows.items():
        vids = [table.videos[i] for i in r]
        idx, valid = context_windows(vids, context)  # (n, T), (n, T)
        x = {m: window(per[m][k], idx, valid) for m in modalities}  # (n, T, d)
        mask = {m: torch.from_numpy(valid.copy()) for m in modalities}
        if tokens is not None:
            x["text"], mask["text"] = tokens[k]  # (n, L, d), (n, L)
        target = np.zeros_like(valid)
        target[:, context] = True
        out[k] = ModalDataset(
            x=x, mask=mask, y=torch.from_numpy(table.y[r].astype(np.float32)),
            ids=[table.ids[i] for i in r], target=torch.from_numpy(target),
            meta={"source": "mosi", "split": split, "part": k, "text_features": text_features,
                  "videos": sorted(set(vids)), "context": context, "text_granularity": text_granularity},
        )
    return out


def load_mosi_check(path) -> dict[str, ModalDataset]:
    """For ``miar data check DIR``: the bc split with the released features, context 0, raw values."""
    return load_mosi(path, split="bc", context=0, standardize=False)
