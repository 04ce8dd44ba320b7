"""Bad input, property-based: whatever is wrong with a data file, loading it raises ``DataError``
(a one-line message naming the file) or succeeds on valid data; never another exception, never code."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miar.data.batch import DataError
from miar.data.pickles import load_mmsa_pickle, load_mult_pickle
from miar.data.safe_pickle import safe_load

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mmsa_split(n: int, rng: np.random.Generator) -> dict:
    return {"raw_text": ["a"] * n, "text": rng.normal(size=(n, 4, 6)).astype(np.float32),
            "audio": rng.normal(size=(n, 5, 3)).astype(np.float32),
            "vision": rng.normal(size=(n, 3, 2)).astype(np.float32),
            "audio_lengths": np.full(n, 5), "vision_lengths": np.full(n, 3),
            "id": [f"v$_${i}" for i in range(n)],
            "regression_labels": rng.uniform(-3, 3, size=n).astype(np.float32)}


def mmsa(rng) -> dict:
    return {s: mmsa_split(k, rng) for s, k in (("train", 6), ("valid", 3), ("test", 3))}


BREAKAGES = ["drop_split", "drop_key", "nan_label", "inf_label", "big_label", "short_modality",
             "dim_mismatch", "empty_split", "duplicate_id", "labels_2d_wrong", "text_not_array", "none"]


def apply(data: dict, how: str, split: str) -> dict:
    d = data[split]
    if how == "drop_split":
        del data[split]
    elif how == "drop_key":
        del d["audio"]
    elif how == "nan_label":
        d["regression_labels"][0] = np.nan
    elif how == "inf_label":
        d["regression_labels"][1] = np.inf
    elif how == "big_label":
        d["regression_labels"][0] = 3.5
    elif how == "short_modality":
        d["vision"] = d["vision"][:-1]
    elif how == "dim_mismatch":
        d["audio"] = np.zeros(d["audio"].shape[:2] + (4,), np.float32)
    elif how == "empty_split":
        data[split] = {k: (v[:0] if hasattr(v, "__getitem__") else v) for k, v in d.items()}
    elif how == "duplicate_id":
        d["id"][1] = d["id"][0]
    elif how == "labels_2d_wrong":
        d["regression_labels"] = np.zeros((len(d["id"]), 2), np.float32)
    elif how == "text_not_array":
        d["text"] = "not an array"
    return data


@SETTINGS
@given(how=st.sampled_from(BREAKAGES), split=st.sampled_from(["train", "valid", "test"]),
       seed=st.integers(0, 2**16))
def test_malformed_mmsa_arrays_raise_data_error(tmp_path, how, split, seed):
    path = tmp_path / f"{how}-{split}-{seed}.pkl"
    path.write_bytes(pickle.dumps(apply(mmsa(np.random.default_rng(seed)), how, split)))
    if how == "none":
        assert len(load_mmsa_pickle(path)["train"]) == 6
        return
    with pytest.raises(DataError) as e:
        load_mmsa_pickle(path)
    assert path.name in str(e.value) and "\n" not in str(e.value)


@SETTINGS
@given(blob=st.binary(max_size=300))
def test_random_bytes_never_unpickle_to_anything_but_data_error(tmp_path, blob):
    path = tmp_path / "random.pkl"
    path.write_bytes(blob)
    try:
        obj = safe_load(path)
    except DataError as e:
        assert "random.pkl" in str(e)
        return
    # some byte strings are valid pickles of plain builtins: the loaders must then refuse the structure
    with pytest.raises(DataError):
        load_mult_pickle(path) if isinstance(obj, dict) else load_mmsa_pickle(path)


@SETTINGS
@given(cut=st.floats(0.0, 0.999))
def test_truncated_pickles_raise_data_error(tmp_path, cut):
    blob = pickle.dumps(mmsa(np.random.default_rng(0)), protocol=4)
    path = tmp_path / "cut.pkl"
    path.write_bytes(blob[: int(len(blob) * cut)])
    with pytest.raises(DataError, match="cut.pkl"):
        load_mmsa_pickle(path)


@pytest.mark.parametrize("how", ["nan_label", "duplicate_id", "dim_mismatch"])
def test_data_check_cli_exit_2_one_line_writes_nothing(tmp_path, how):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(apply(mmsa(np.random.default_rng(1)), how, "valid")))
    before = sorted(p.name for p in tmp_path.iterdir())
    r = subprocess.run([sys.executable, "-m", "miar.cli", "data", "check", str(path)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "bad.pkl" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
