"""Reading the released CMU-MOSI files (bc-LSTM, Poria et al. 2017) into one table.

``read_mosi`` joins the CSVs of ``<root>/CMU-MOSI`` into a ``MosiTable`` of all 2199 utterances
(see ``shared/data/README.md`` for the joins) and, when present, the standard video folds from the
GCNet pickle (through the restricted unpickler). Every problem is a one-line ``DataError`` naming
the file. Splits, context windows and datasets are in :mod:`miar.data.mosi`.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from miar.data.batch import MODALITIES, DataError
from miar.data.safe_pickle import safe_load

DIMS = {"text": 100, "audio": 73, "vision": 100}  # released feature widths
FILE_PREFIX = {"text": "text", "audio": "audio", "vision": "video"}  # <prefix>_<part>0.csv
FOLDS_FILE = "CMUMOSI_features_raw_2way.pkl"


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
