"""``miar data check``: load whichever data ``path`` is (the released MOSI directory, an MMSA or a MulT
pickle, or a folder ``miar data convert`` wrote), validate it (:mod:`miar.data.validate`) and summarize it."""

from __future__ import annotations

from pathlib import Path

from miar.data.batch import DataError, ModalDataset
from miar.data.mosi import load_mosi_check
from miar.data.pickles import load_pickle_object, pickle_format
from miar.data.safe_pickle import safe_load
from miar.data.validate import MOSI_CSV_MARKERS, summarize, validate_splits


def detect_and_load(path: str | Path) -> dict[str, ModalDataset]:
    """Load a MOSI CSV directory, an MMSA pickle or a MulT pickle, whichever ``path`` is."""
    p = Path(path)
    if (p / "manifest.json").is_file():  # a `miar data convert` folder: manifest and checksums checked
        from miar.data.convert import load_converted

        return load_converted(p)
    if p.is_dir():
        if not any((p / f).is_file() for f in MOSI_CSV_MARKERS) and (p / "CMU-MOSI").is_dir():
            p = p / "CMU-MOSI"  # the $MIAR_DATA layout: the directory that holds CMU-MOSI/
        if not any((p / f).is_file() for f in MOSI_CSV_MARKERS):
            raise DataError(f"{p}: directory holds none of {list(MOSI_CSV_MARKERS)} (nor a CMU-MOSI/ that does)")
        splits = load_mosi_check(p)
        validate_splits(splits, str(p), required=())
        return splits
    obj = safe_load(p)
    if pickle_format(obj) is None:
        raise DataError(f"{p}: unknown pickle structure (expected an MMSA dict with "
                        f"'regression_labels' or a MulT dict with 'labels' per split)")
    return load_pickle_object(obj, str(p))


__all__ = ["detect_and_load", "summarize"]
