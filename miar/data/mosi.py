"""The released utterance-level CMU-MOSI features (bc-LSTM, Poria et al. 2017).

``read_mosi`` joins the CSVs of ``<root>/CMU-MOSI`` into one table of all 2199 utterances
(see ``shared/data/README.md`` for the joins); ``load_mosi`` turns it into train/valid/test
``ModalDataset``s, optionally with context windows of neighbouring utterances.

Leakage: the released text CNN and visual 3D-CNN features were trained with labels on the
bc-LSTM training split, so they may only be evaluated on the bc split (``split="bc"``).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from miar.data.batch import MODALITIES, DataError, ModalDataset, apply_zscore, zscore_stats

BC_SIZES = (1447, 752)  # bc-LSTM train / test utterances (62 / 31 videos)
STANDARD_SIZES = (1284, 229, 686)  # CMU-MultimodalSDK folds (52 / 10 / 31 videos)
N_UTTERANCES = 2199
DIMS = {"text": 100, "audio": 73, "vision": 100}  # released feature widths
FILE_PREFIX = {"text": "text", "audio": "audio", "vision": "video"}  # <prefix>_<part>0.csv
FOLDS_FILE = "CMUMOSI_features_raw_2way.pkl"
ENCODERS = ("minilm", "mpnet", "static")
LEAK_MESSAGE = (
    "split='standard' refuses the released {what} features: the text CNN and visual 3D-CNN "
    "extractors were trained with labels on the bc-LSTM training split, which contains 24 of the "
    "standard split's 31 test videos (558 of 686 test utterances). Use split='bc', or "
    "text_features='minilm'|'mpnet'|'static' without 'vision'."
)


@dataclass
class MosiTable:
    """All utterances, train part then test part in file order; arrays are row-aligned."""

    ids: list[str]  # segment ids "<video>_<k>"
    videos: list[str]  # video id of each row
    index: np.ndarray  # (N,) int, utterance index k within its video (1-based)
    y: np.ndarray  # (N,) float64 continuous sentiment in [-3, 3]
    transcripts: list[str]  # upper case, as released
    features: dict[str, np.ndarray]  # modality -> (N, d) float32
    bc_part: np.ndarray  # (N,) "train" / "test"
    folds: dict[str, set[str]] | None  # standard video folds train/valid/test; None if pkl absent


def mosi_dir(root: str | os.PathLike | None) -> Path:
    """Resolve the CMU-MOSI folder from ``root`` (or env MIAR_DATA); accepts root or root/CMU-MOSI."""
    if root is None:
        root = os.environ.get("MIAR_DATA")
        if not root:
            raise DataError("no data directory given and MIAR_DATA is not set")
    root = Path(root)
    for d in (root / "CMU-MOSI", root):
        if (d / "transcripts.csv").is_file() or (d / "text_train.csv").is_file():
            return d
    raise DataError(f"{root}: no CMU-MOSI data (expected {root / 'CMU-MOSI'}/transcripts.csv)")


def base_dir(root: str | os.PathLike | None) -> Path:
    """The data directory holding CMU-MOSI/ (the CMU-MOSI folder itself for a flat layout)."""
    d = mosi_dir(root)
    return d.parent if d.name == "CMU-MOSI" else d


def read_rows(path: Path) -> list[list[str]]:
    """Read a header-less CSV into a list of string rows; a missing file is a DataError."""
    if not path.is_file():
        raise DataError(f"{path.name}: missing file (looked in {path.parent})")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [row for row in csv.reader(f) if row]
    except UnicodeDecodeError as e:
        raise DataError(f"{path.name}: not UTF-8 text (undecodable byte at offset {e.start})") from None
    except csv.Error as e:
        raise DataError(f"{path.name}: malformed CSV ({e})") from None


def read_matrix(path: Path, width: int) -> np.ndarray:
    """Read a numeric CSV of exactly ``width`` columns into a float64 array."""
    rows = read_rows(path)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise DataError(f"{path.name}: row {i} has {len(row)} columns, expected {width}")
    try:
        a = np.array(rows, dtype=np.float64).reshape(len(rows), width)
    except ValueError:
        for i, row in enumerate(rows):
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    raise DataError(f"{path.name}: non-numeric cell at row {i}, column {j}: {cell!r}") from None
        raise
    if not np.isfinite(a).all():
        i, j = np.argwhere(~np.isfinite(a))[0]
        raise DataError(f"{path.name}: non-finite cell at row {i}, column {j}: {rows[i][j]!r}")
    return a


def read_labels(d: Path) -> dict[str, float]:
    """OpinionLevelSentiment.csv: segment id ``<video>_<k>`` -> continuous score."""
    name, out = "OpinionLevelSentiment.csv", {}
    for i, row in enumerate(read_rows(d / name)):
        if len(row) < 5:
            raise DataError(f"{name}: row {i} has {len(row)} columns, expected 5")
        try:
            out[f"{row[2]}_{int(float(row[3]))}"] = float(row[4])
        except ValueError:
            raise DataError(f"{name}: non-numeric cell in row {i}: {row!r}") from None
    return out


def read_part(d: Path, part: str, transcripts: list[list[str]], labels: dict[str, float]) -> dict:
    """Join the four CSVs of one bc part ("train"/"test") into ids, transcripts, labels, features."""
    index_name = f"text_{part}.csv"
    index = read_matrix(d / index_name, DIMS["text"] + 1)
    feats, binary = {}, {}
    for m in MODALITIES:
        name = f"{FILE_PREFIX[m]}_{part}0.csv"
        a = read_matrix(d / name, DIMS[m] + 1)
        if len(a) != len(index):
            raise DataError(f"{name}: has {len(a)} rows, expected {len(index)} (as in {index_name})")
        feats[m], binary[name] = a[:, :-1], a[:, -1]
        if m == "text" and not np.allclose(a[:, :-1], index[:, 1:], rtol=0, atol=1e-6):
            raise DataError(f"{index_name}: columns 1..100 differ from the first 100 columns of {name}")
    ids, text = [], []
    for i, j in enumerate(index[:, 0]):
        if j != int(j) or not 0 <= j < len(transcripts):
            raise DataError(f"{index_name}: row {i} points to transcripts.csv row {j:g}, which does not exist")
        seg = transcripts[int(j)]
        if seg[0] not in labels:
            raise DataError(f"OpinionLevelSentiment.csv: no label for segment {seg[0]!r} (from transcripts.csv)")
        ids.append(seg[0])
        text.append(seg[1] if len(seg) > 1 else "")
    y = np.array([labels[s] for s in ids], dtype=np.float64)
    for name, b in binary.items():
        bad = np.flatnonzero(b != (y >= 0))
        if len(bad):
            raise DataError(f"{name}: binary label {b[bad[0]]:g} of row {bad[0]} disagrees with score {y[bad[0]]:g}")
    return {"ids": ids, "text": text, "y": y, "features": feats}


def read_folds(d: Path, known_videos: set[str]) -> dict[str, set[str]] | None:
    """Standard 52/10/31 video folds from the GCNet pickle (items 4, 5, 6); None if the file is absent."""
    path = d / FOLDS_FILE
    if not path.is_file():
        return None
    from miar.data.safe_pickle import safe_load

    obj = safe_load(path)
    if not isinstance(obj, (list, tuple)) or len(obj) < 7:
        raise DataError(f"{FOLDS_FILE}: expected a list of 7 items, got {type(obj).__name__}")
    folds = {k: {str(v) for v in obj[i]} for k, i in (("train", 4), ("valid", 5), ("test", 6))}
    unknown = sorted(set().union(*folds.values()) - known_videos)
    if unknown:
        raise DataError(f"{FOLDS_FILE}: unknown video ids {unknown[:5]}")
    return folds


def read_mosi(root: str | os.PathLike | None) -> MosiTable:
    """Join the released CSVs (and the fold pickle, if present) into a ``MosiTable``."""
    d = mosi_dir(root)
    transcripts, labels = read_rows(d / "transcripts.csv"), read_labels(d)
    parts = {p: read_part(d, p, transcripts, labels) for p in ("train", "test")}
    ids = parts["train"]["ids"] + parts["test"]["ids"]
    dup = [s for s, c in Counter(ids).items() if c > 1]
    if dup:
        raise DataError(f"text_train.csv/text_test.csv: segment ids appear twice: {sorted(dup)[:5]}")
    videos = [s.rsplit("_", 1)[0] for s in ids]
    try:
        k = np.array([int(s.rsplit("_", 1)[1]) for s in ids], dtype=np.int64)
    except (IndexError, ValueError):
        raise DataError("transcripts.csv: segment ids must look like '<video>_<k>'") from None
    feats = {m: np.concatenate([parts[p]["features"][m] for p in parts]).astype(np.float32) for m in MODALITIES}
    return MosiTable(
        ids=ids, videos=videos, index=k,
        y=np.concatenate([parts["train"]["y"], parts["test"]["y"]]),
        transcripts=parts["train"]["text"] + parts["test"]["text"],
        features=feats,
        bc_part=np.array(["train"] * len(parts["train"]["ids"]) + ["test"] * len(parts["test"]["ids"])),
        folds=read_folds(d, set(videos)),
    )


def split_videos(table: MosiTable, split: str, n_valid_videos: int, valid_seed: int) -> dict[str, list[str]]:
    """Sorted video ids of train/valid/test for ``split`` ("bc" or "standard").

    For "bc" the validation videos are ``n_valid_videos`` whole videos drawn from the bc training
    videos with ``numpy.random.default_rng(valid_seed)``; the default seed keeps them fixed across
    model seeds, so every run selects checkpoints on the same held-out videos. For "standard"
    the fixed SDK folds are used and ``n_valid_videos``/``valid_seed`` are ignored.
    """
    if split == "standard":
        if table.folds is None:
            raise DataError(f"{FOLDS_FILE}: missing file (needed for split='standard')")
        return {k: sorted(v) for k, v in table.folds.items()}
    if split != "bc":
        raise ValueError(f"split must be 'bc' or 'standard', got {split!r}")
    train = sorted({v for v, p in zip(table.videos, table.bc_part) if p == "train"})
    test = sorted({v for v, p in zip(table.videos, table.bc_part) if p == "test"})
    if not 1 <= n_valid_videos < len(train):
        raise ValueError(f"n_valid_videos must be in [1, {len(train) - 1}], got {n_valid_videos}")
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
    from miar.data.encoders import default_cache_dir, load_features

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(base_dir(root))
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
        raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {modalities}")
    if text_features not in ("cnn",) + ENCODERS:
        raise ValueError(f"text_features must be 'cnn' or one of {ENCODERS}, got {text_features!r}")
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if granularity not in ("utterance", "token"):
        raise ValueError(f"text_granularity must be 'utterance' or 'token', got {granularity!r}")
    if granularity == "token" and (context != 0 or text_features == "cnn"):
        raise ValueError("text_granularity='token' needs context=0 and an encoder text_features")
    if split == "standard" and "vision" in modalities:
        raise DataError(LEAK_MESSAGE.format(what="visual 3D-CNN"))
    if split == "standard" and "text" in modalities and text_features == "cnn":
        raise DataError(LEAK_MESSAGE.format(what="text CNN"))


def load_mosi(root=None, *, split: str = "bc", modalities=("text", "audio", "vision"),
              text_features: str = "cnn", context: int = 0, n_valid_videos: int = 10, valid_seed: int = 0,
              standardize: bool = True, cache_dir=None, text_granularity: str = "utterance",
              ) -> dict[str, ModalDataset]:
    """CMU-MOSI as train/valid/test ``ModalDataset``s; samples ordered by (video, utterance index).

    ``context`` neighbours of the same video on each side give windows of T = 2*context+1 steps
    (``target`` marks the centre; features only, never neighbours' labels). With ``standardize``
    every modality is z-scored with training-split statistics. See the module docstring on leakage.
    """
    check_args(split, tuple(modalities), text_features, context, text_granularity)
    modalities = tuple(m for m in MODALITIES if m in modalities)  # fixed order
    table = read_mosi(root)
    rows = {k: split_rows(table, v) for k, v in split_videos(table, split, n_valid_videos, valid_seed).items()}
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
