"""MMSA / MulT pickle loaders, the restricted unpickler, validation errors and format detection."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from miar.data.batch import DataError, ModalDataset
from miar.data.check import detect_and_load
from miar.data.pickles import load_mmsa_pickle, load_mult_pickle
from miar.data.safe_pickle import UnsafePickleError, safe_load
from miar.data.synthetic import make_synthetic, write_mmsa_pickle, write_mult_pickle
from miar.data.validate import summarize, validate_splits

REAL_NAME = "CMU-MOSI/CMUMOSI_features_raw_2way.pkl"
SIZES = {"train": 6, "valid": 3, "test": 4}


def _dump(obj, path: Path, protocol: int = 4) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def _padded(rng, lengths: np.ndarray, t: int, d: int) -> np.ndarray:
    """(N, t, d) Gaussian features, exactly zero after each sample's length."""
    x = rng.standard_normal((len(lengths), t, d)).astype(np.float32)
    return x * (np.arange(t)[None] < lengths[:, None])[..., None]


def mmsa_split(n: int, seed: int, aligned: bool = True, d_a: int = 5, d_v: int = 20) -> dict:
    """One split in the exact MMSA layout; real lengths 1..T, zero padding."""
    rng = np.random.default_rng(seed)
    t_a, t_v = (50, 50) if aligned else (375, 500)
    len_t = rng.integers(1, 51, n)
    len_a = len_t if aligned else rng.integers(1, t_a + 1, n)
    len_v = len_t if aligned else rng.integers(1, t_v + 1, n)
    text_bert = np.zeros((n, 3, 50), dtype=np.float32)
    text_bert[:, 1] = np.arange(50)[None] < len_t[:, None]
    text_bert[:, 0] = text_bert[:, 1] * 2000
    audio = _padded(rng, len_a, t_a, d_a)
    vision = _padded(rng, len_v, t_v, d_v)
    d = {"raw_text": [f"SENTENCE {i}" for i in range(n)],
         "text": rng.standard_normal((n, 50, 768)).astype(np.float32), "text_bert": text_bert,
         "audio": audio, "vision": vision,
         "id": np.array([f"vid{seed}$_${i}" for i in range(n)], dtype=object),
         "annotations": ["Positive"] * n,
         "regression_labels": rng.uniform(-3, 3, n).astype(np.float32)}
    if not aligned:
        d["audio_lengths"], d["vision_lengths"] = len_a.tolist(), len_v.tolist()
    return d


def mult_split(n: int, seed: int, two_d_ids: bool = False) -> dict:
    """One split in the exact MulT layout: labels (N, 1, 1), byte-string ids."""
    rng = np.random.default_rng(seed)
    dims = {"text": 300, "audio": 5, "vision": 20}
    x = {m: rng.standard_normal((n, 20, d)).astype(np.float32) for m, d in dims.items()}
    x["audio"][0, 10:] = 0  # padding at the end of sample 0
    ids = [[f"v{seed}".encode(), str(i).encode()] for i in range(n)]
    return {**x, "labels": rng.uniform(-3, 3, (n, 1, 1)).astype(np.float32),
            "id": np.array(ids if two_d_ids else [b"$_$".join(r) for r in ids])}


def mmsa_obj(aligned: bool = True) -> dict:
    return {k: mmsa_split(n, i, aligned) for i, (k, n) in enumerate(SIZES.items())}


def mult_obj(two_d_ids: bool = False) -> dict:
    return {k: mult_split(n, i, two_d_ids) for i, (k, n) in enumerate(SIZES.items())}


# --- MMSA ------------------------------------------------------------------------------------


def test_mmsa_aligned_masks_and_nonfinite(tmp_path):
    obj = mmsa_obj(aligned=True)
    obj["train"]["audio"][0, 0, :3] = -np.inf
    obj["test"]["vision"][1, 0, 0] = np.nan
    path = _dump(obj, tmp_path / "aligned_50.pkl")
    with pytest.warns(UserWarning, match=r"aligned_50\.pkl: replaced 4 non-finite feature values by 0"):
        splits = load_mmsa_pickle(path)
    tr = splits["train"]
    assert set(splits) == {"train", "valid", "test"} and len(tr) == 6
    assert tr.dims == {"text": 768, "audio": 5, "vision": 20}
    assert torch.equal(tr.x["audio"][0, 0, :3], torch.zeros(3))
    assert torch.equal(tr.mask["text"], torch.from_numpy(obj["train"]["text_bert"][:, 1] > 0))
    assert torch.equal(tr.mask["audio"], tr.mask["text"])  # no lengths: non-zero steps (aligned)
    assert tr.ids[2] == "vid0$_$2" and tr.meta["raw_text"][0] == "SENTENCE 0"
    assert torch.allclose(tr.y, torch.from_numpy(obj["train"]["regression_labels"]))


def test_mmsa_unaligned_masks_from_lengths(tmp_path):
    obj = mmsa_obj(aligned=False)
    obj["valid"]["id"] = np.array([f"b{i}$_$1".encode() for i in range(3)])  # bytes ids decode
    splits = load_mmsa_pickle(_dump(obj, tmp_path / "unaligned_50.pkl"))
    te = splits["test"]
    assert te.x["audio"].shape == (4, 375, 5) and te.x["vision"].shape == (4, 500, 20)
    assert te.mask["audio"].sum(1).tolist() == obj["test"]["audio_lengths"]
    assert te.mask["vision"].sum(1).tolist() == obj["test"]["vision_lengths"]
    assert splits["valid"].ids == ["b0$_$1", "b1$_$1", "b2$_$1"]


# --- MulT ------------------------------------------------------------------------------------


@pytest.mark.parametrize("two_d_ids", [False, True])
def test_mult_labels_ids_masks(tmp_path, two_d_ids):
    obj = mult_obj(two_d_ids)
    obj["valid"]["vision"][2] = 0  # an all-padding sample keeps one step
    splits = load_mult_pickle(_dump(obj, tmp_path / "mosi_data.pkl"))
    tr = splits["train"]
    assert tr.y.shape == (6,) and tr.y.dtype == torch.float32
    assert tr.ids[1] == "v0$_$1"
    assert tr.mask["audio"][0].sum() == 10 and tr.mask["audio"][1].all()
    assert splits["valid"].mask["vision"][2].tolist() == [True] + [False] * 19


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("fmt", ["mmsa", "mult"])
def test_synthetic_round_trip(tmp_path, aligned, fmt):
    src = make_synthetic(seed=5, n_train=12, n_valid=4, n_test=5, aligned=aligned)
    path = tmp_path / f"{fmt}.pkl"
    (write_mmsa_pickle if fmt == "mmsa" else write_mult_pickle)(src, path)
    back = (load_mmsa_pickle if fmt == "mmsa" else load_mult_pickle)(path)
    via_detect = detect_and_load(path)
    for k, ds in src.items():
        for out in (back[k], via_detect[k]):
            assert out.ids == ds.ids and torch.equal(out.y, ds.y)
            for m in ds.modalities:
                assert torch.equal(out.x[m], ds.x[m]) and torch.equal(out.mask[m], ds.mask[m])
    assert "train" in summarize(back) and "vision" in summarize(back)


# --- restricted unpickler --------------------------------------------------------------------


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo pwned > {self.marker}",)


def test_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = _dump({"train": _Evil(marker)}, tmp_path / "evil.pkl")
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl: refused to unpickle '(posix|nt|os)\.system'"):
        safe_load(path)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError, match="not a numpy/builtin type"):
        detect_and_load(path)
    assert not marker.exists()
    assert issubclass(UnsafePickleError, DataError)


@pytest.mark.parametrize("payload", [b"", b"\x80\x04garbage", b"not a pickle at all"])
def test_unreadable_pickles(tmp_path, payload):
    path = tmp_path / "bad.pkl"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=r"bad\.pkl: not a readable pickle"):
        safe_load(path)


def test_truncated_and_missing(tmp_path):
    good = pickle.dumps(mult_obj(), protocol=4)
    path = tmp_path / "cut.pkl"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cut\.pkl: not a readable pickle"):
        safe_load(path)
    with pytest.raises(DataError, match="nope.pkl"):
        safe_load(tmp_path / "nope.pkl")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_allowed_types_round_trip(tmp_path, protocol):
    obj = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float64(1.5), "i": np.int64(3),
           "b": np.array([b"x", b"yz"]), "o": np.array(["p", 1], dtype=object), "set": {1, 2},
           "fs": frozenset({"q"}), "od": OrderedDict(k=[1, (2, 3)]), "c": 1j, "raw": b"\x00\xff"}
    back = safe_load(_dump(obj, tmp_path / "ok.pkl", protocol))
    assert back.keys() == obj.keys() and back["s"] == 1.5 and back["raw"] == b"\x00\xff"
    assert np.array_equal(back["a"], obj["a"]) and back["a"].dtype == np.float32
    assert list(back["b"]) == [b"x", b"yz"] and back["od"] == obj["od"] and back["set"] == {1, 2}


@pytest.mark.realdata
def test_real_mosi_pickle_loads(mosi_root):
    obj = safe_load(mosi_root / REAL_NAME)
    assert isinstance(obj, list) and len(obj) == 7 and isinstance(obj[4], set)


# --- validation errors -----------------------------------------------------------------------


def _set(split, key, fn):
    """A mutation replacing ``o[split][key]`` by ``fn(old)``; key "LABEL" = the format's label key."""
    def f(o, label_key):
        k = label_key if key == "LABEL" else key
        o[split][k] = fn(o[split][k])
    return f


def _nan_first(a):
    a = a.copy()
    a.flat[0] = np.nan
    return a


def _drop_audio(o, label_key):
    del o["train"]["audio"]


def _empty_test(o, label_key):
    o["test"] = {k: v[:0] for k, v in o["test"].items()}


CASES = {
    "missing split": (lambda o, k: o.pop("valid"), "missing split 'valid'"),
    "missing key": (_drop_audio, "no key 'audio'"),
    "sizes disagree": (_set("train", "audio", lambda a: a[:-1]), "sizes disagree"),
    "dims differ": (_set("test", "vision", lambda a: np.concatenate([a, a[..., :1]], -1)),
                    "vision feature dim"),
    "nan label": (_set("valid", "LABEL", _nan_first), "non-finite labels"),
    "label range": (_set("valid", "LABEL", lambda a: a * 0 + 3.5), "outside [-3, 3]"),
    "empty split": (_empty_test, "'test' is empty"),
    "duplicate ids": (_set("train", "id", lambda a: np.concatenate([a[:1], a[:-1]])), "duplicate ids"),
}


@pytest.mark.parametrize("fmt", ["mmsa", "mult"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_errors(tmp_path, fmt, case):
    obj = mmsa_obj(aligned=True) if fmt == "mmsa" else mult_obj()
    if fmt == "mmsa":  # optional keys whose sizes would also disagree after a mutation
        for d in obj.values():
            del d["raw_text"], d["annotations"], d["text_bert"]
    mutate, expected = CASES[case]
    mutate(obj, "regression_labels" if fmt == "mmsa" else "labels")
    path = _dump(obj, tmp_path / f"broken_{fmt}.pkl")
    with pytest.raises(DataError, match=f"broken_{fmt}.pkl") as info:
        (load_mmsa_pickle if fmt == "mmsa" else load_mult_pickle)(path)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_label_tolerance_and_validate_splits_direct():
    src = make_synthetic(seed=1, n_train=8, n_valid=3, n_test=3, dims=(4, 3, 2), seq_len=6)
    src["train"].y[0] = 3.0 + 5e-7  # inside the 1e-6 tolerance
    validate_splits(src, "mem")
    del src["valid"]
    with pytest.raises(DataError, match="mem: missing split 'valid'"):
        validate_splits(src, "mem")
    validate_splits(src, "mem", required=("train", "test"))


# --- format detection ------------------------------------------------------------------------


def test_detect_unknown_and_directories(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"other\.pkl: unknown pickle structure"):
        detect_and_load(_dump({"train": {"x": 1}}, tmp_path / "other.pkl"))
    with pytest.raises(DataError, match="none of"):
        detect_and_load(tmp_path)
    (tmp_path / "text_train0.csv").write_text("")
    import miar.data.check
    monkeypatch.setattr(miar.data.check, "load_mosi_check",
                        lambda p: make_synthetic(seed=2, n_train=5, n_valid=2, n_test=2, dims=(3, 3, 3), seq_len=4))
    assert len(detect_and_load(tmp_path)["train"]) == 5
    assert isinstance(detect_and_load(_dump(mult_obj(), tmp_path / "m.pkl"))["test"], ModalDataset)


def test_loaders_importable_from_miar_data():
    import miar.data
    from miar.data import pickles

    assert miar.data.load_mmsa_pickle is pickles.load_mmsa_pickle
    assert miar.data.load_mult_pickle is pickles.load_mult_pickle
