"""``miar data convert PICKLE DIR``: an MMSA or MulT pickle, once, as memory-mapped arrays plus a manifest.

The pickle is read and validated exactly as the loaders read it (:mod:`miar.data.pickles`: restricted
unpickler, non-finite values to 0, masks, labels, ids), then every array is written as one ``.npy`` file
per split and name, and the strings (ids, ``raw_text``) as one JSON file per split::

    DIR/manifest.json             format, source file and its sha256, per split: n, and per file its
                                  shape, dtype, bytes and sha256
    DIR/<split>/<modality>.npy    (N, T, d) float32        DIR/<split>/<modality>_mask.npy  (N, T) bool
    DIR/<split>/labels.npy        (N,) float32             DIR/<split>/text_bert.npy  (N, 2, T) int64 (MMSA)
    DIR/<split>/strings.json      {"ids": [...], "raw_text": [...]}

Everything is written into a hidden sibling folder and renamed to ``DIR`` at the end: a failed conversion
leaves nothing. :func:`load_converted` (used by ``data.path`` pointing at such a folder) maps the arrays
from disk (copy-on-write) instead of unpickling gigabytes; it checks the manifest, each file's shape,
dtype, size and sha256 first, so a corrupted or mismatched folder is one :class:`DataError` line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from miar.data.batch import MODALITIES, DataError, ModalDataset
from miar.data.pickles import load_pickle_object, pickle_format
from miar.data.safe_pickle import safe_load
from miar.data.validate import SPLITS, validate_splits

FORMAT = "miar-converted/1"
MANIFEST = "manifest.json"
ALLOWED_FILES = frozenset([f"{m}{s}.npy" for m in MODALITIES for s in ("", "_mask")]
                          + ["labels.npy", "text_bert.npy", "strings.json"])  # what _write_split writes


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def _arrays(ds: ModalDataset) -> dict[str, np.ndarray]:
    out = {}
    for m in ds.modalities:
        out[m] = ds.x[m].numpy().astype(np.float32, copy=False)  # (N, T, d)
        out[f"{m}_mask"] = ds.mask[m].numpy().astype(bool, copy=False)  # (N, T)
    out["labels"] = ds.y.numpy().astype(np.float32, copy=False)  # (N,)
    if ds.meta.get("text_bert") is not None:
        out["text_bert"] = np.asarray(ds.meta["text_bert"], dtype=np.int64)  # (N, 2, T) ids, mask
    return out


def _write_split(ds: ModalDataset, folder: Path) -> dict:
    folder.mkdir()
    entry = {"n": len(ds), "files": {}}
    for name, a in _arrays(ds).items():
        path = folder / f"{name}.npy"
        np.save(path, np.ascontiguousarray(a), allow_pickle=False)
        entry["files"][path.name] = {"shape": list(a.shape), "dtype": str(a.dtype), "bytes": path.stat().st_size,
                                     "sha256": sha256_file(path)}
    strings = {"ids": list(ds.ids), "raw_text": ds.meta.get("raw_text")}
    path = folder / "strings.json"
    path.write_text(json.dumps(strings, ensure_ascii=False), encoding="utf-8")
    entry["files"][path.name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return entry


def convert_pickle(pickle_path: str | Path, out_dir: str | Path) -> Path:
    """Convert ``pickle_path`` (MMSA or MulT) into ``out_dir`` (which must not exist yet); returns it."""
    src, out = Path(pickle_path), Path(out_dir)
    if out.exists():
        raise DataError(f"{out}: already exists; remove it or choose another directory")
    if not out.parent.is_dir():
        raise DataError(f"{out.parent}: no such directory")
    obj = safe_load(src)
    fmt = pickle_format(obj)
    if fmt is None:
        raise DataError(f"{src}: unknown pickle structure (expected an MMSA or a MulT dict of splits)")
    splits = load_pickle_object(obj, str(src))
    del obj
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        manifest = {"format": FORMAT, "source_format": fmt, "source": src.name, "source_sha256": sha256_file(src),
                    "modalities": list(MODALITIES), "splits": {}}
        for name, ds in splits.items():
            manifest["splits"][name] = _write_split(ds, tmp / name)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    u = os.umask(0)
    os.umask(u)
    return u


def is_converted(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise DataError(f"{folder}: not a converted dataset (no {MANIFEST}); run `miar data convert PICKLE DIR`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: unreadable manifest ({str(e).splitlines()[0]}); re-run `miar data convert`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("splits"), dict):
        raise DataError(f"{path}: not a {FORMAT} manifest; re-run `miar data convert`")
    return manifest


def _check_file(folder: Path, name: str, spec: dict, verify: bool) -> Path:
    path = folder / name
    redo = "; re-run `miar data convert`"
    if not path.is_file():
        raise DataError(f"{path}: missing file listed in the manifest{redo}")
    if path.stat().st_size != spec.get("bytes"):
        raise DataError(f"{path}: {path.stat().st_size} bytes, the manifest says {spec.get('bytes')}{redo}")
    if verify and sha256_file(path) != spec.get("sha256"):
        raise DataError(f"{path}: checksum differs from the manifest (corrupted or replaced){redo}")
    return path


def _load_array(path: Path, spec: dict) -> np.ndarray:
    try:
        a = np.load(path, mmap_mode="c", allow_pickle=False)  # copy-on-write map: pages read on use
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable array ({str(e).splitlines()[0]}); re-run `miar data convert`") from None
    if list(a.shape) != spec.get("shape") or str(a.dtype) != spec.get("dtype"):
        raise DataError(f"{path}: shape {list(a.shape)} {a.dtype}, the manifest says {spec.get('shape')} "
                        f"{spec.get('dtype')}; re-run `miar data convert`")
    return a


def _check_entry(folder: Path, name: str, entry) -> dict:
    """A split's manifest entry: ``n`` and ``files``, each a plain file name inside the split's folder with its
    size and checksum (a name with a path in it would make the loader read and hash files outside ``folder``)."""
    where, redo = f"{folder / MANIFEST}: split '{name}'", "; re-run `miar data convert`"
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict) \
            or not isinstance(entry.get("n"), int) or isinstance(entry.get("n"), bool):
        raise DataError(f"{where}: malformed entry (needs an integer 'n' and a 'files' mapping){redo}")
    for f, spec in entry["files"].items():
        if f not in ALLOWED_FILES:
            raise DataError(f"{where}: file {f!r} is not one a conversion writes (refused: only files of "
                            f"the split's own folder are read){redo}")
        if not isinstance(spec, dict) or not isinstance(spec.get("bytes"), int) \
                or not isinstance(spec.get("sha256"), str):
            raise DataError(f"{where}: malformed entry for {f!r} (needs 'bytes' and 'sha256'){redo}")
    return entry["files"]


def _load_split(folder: Path, name: str, entry: dict, verify: bool) -> ModalDataset:
    files = _check_entry(folder, name, entry)
    for f, spec in files.items():
        _check_file(folder / name, f, spec, verify)
    need = [f"{m}.npy" for m in MODALITIES] + [f"{m}_mask.npy" for m in MODALITIES] + ["labels.npy", "strings.json"]
    missing = [f for f in need if f not in files]
    if missing:
        raise DataError(f"{folder / MANIFEST}: split '{name}' lists no {missing[0]}; re-run `miar data convert`")
    arr = {f[:-4]: _load_array(folder / name / f, spec) for f, spec in files.items() if f.endswith(".npy")}
    strings = _strings(folder / name / "strings.json")
    n = entry.get("n")
    if len(strings.get("ids", [])) != n or arr["labels"].shape != (n,):
        raise DataError(f"{folder / name}: {len(strings.get('ids', []))} ids and {arr['labels'].shape[0]} labels, "
                        f"the manifest says {n}; re-run `miar data convert`")
    meta = {"source": str(folder), "split": name, "format": "converted"}
    if strings.get("raw_text") is not None:
        meta["raw_text"] = strings["raw_text"]
    if "text_bert" in arr:
        meta["text_bert"] = arr["text_bert"]
    return ModalDataset(x={m: torch.from_numpy(arr[m]) for m in MODALITIES},
                        mask={m: torch.from_numpy(arr[f"{m}_mask"]) for m in MODALITIES},
                        y=torch.from_numpy(arr["labels"]), ids=list(strings["ids"]), meta=meta)


def _strings(path: Path) -> dict:
    try:
        strings = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: unreadable ({str(e).splitlines()[0]}); re-run `miar data convert`") from None
    if not isinstance(strings, dict) or not isinstance(strings.get("ids"), list):
        raise DataError(f"{path}: expected an object with an 'ids' list; re-run `miar data convert`")
    return strings


def load_converted(folder: str | Path, expect: str | None = None, verify: bool = True) -> dict[str, ModalDataset]:
    """The splits of a converted folder, memory-mapped; ``expect`` ("mmsa"/"mult"): the source format the
    config names. Checks as described in the module docstring, then :func:`validate_splits`."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if expect is not None and manifest.get("source_format") != expect:
        raise DataError(f"{folder}: converted from a {manifest.get('source_format')} pickle, "
                        f"but data.source={expect}")
    missing = [s for s in SPLITS if s not in manifest["splits"]]
    if missing:
        raise DataError(f"{folder / MANIFEST}: no split '{missing[0]}'; re-run `miar data convert`")
    splits = {s: _load_split(folder, s, manifest["splits"][s], verify) for s in SPLITS}
    validate_splits(splits, str(folder))
    return splits


__all__ = ["FORMAT", "MANIFEST", "convert_pickle", "is_converted", "load_converted", "read_manifest"]
