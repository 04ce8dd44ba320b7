"""CMU-MOSI loader: tiny files in the released formats built here, plus checks on the real data."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from miar.data.batch import DataError
from miar.data.mosi import BC_SIZES, STANDARD_SIZES, load_mosi, load_mosi_check, read_mosi
from miar.data.text_features import write_npz

# video -> (bc part, standard fold, utterance indices); "vid_B" has an underscore, "vidD" a gap
VIDEOS = {"vidA": ("train", "train", [1, 2, 3]), "vid_B": ("train", "train", [1, 2]),
          "vidC": ("train", "valid", [1, 2]), "vidF": ("train", "train", [1, 2]),
          "vidD": ("test", "test", [1, 2, 10]), "vidE": ("test", "test", [1])}
DIMS = {"text": 100, "audio": 73, "video": 100}


def segments() -> list[tuple[str, str, int, float]]:
    """(segment id, video, k, score) for every tiny utterance; scores include 0 and negatives."""
    rng, out = np.random.default_rng(0), []
    for v, (_, _, ks) in VIDEOS.items():
        out += [(f"{v}_{k}", v, k, float(np.round(rng.uniform(-3, 3), 1))) for k in ks]
    out[0] = (*out[0][:3], 0.0)
    return out


def write_csv(path: Path, rows, quote: bool = True) -> None:
    """Header-less CSV; quoted decimal strings like the released bc-LSTM files."""
    with open(path, "w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL if quote else csv.QUOTE_MINIMAL).writerows(
            [[str(c) for c in r] for r in rows])


def make_mosi(tmp_path: Path) -> tuple[Path, dict]:
    """Write a tiny CMU-MOSI folder; return the root and the features written per segment."""
    d, rng = tmp_path / "CMU-MOSI", np.random.default_rng(1)
    d.mkdir()
    segs = segments()
    shuffled = [segs[i] for i in rng.permutation(len(segs))]  # transcripts.csv order
    row_of = {s[0]: i for i, s in enumerate(shuffled)}
    write_csv(d / "transcripts.csv", [[s, f"WORDS OF {s.upper()}", 1, int(y >= 0)] for s, _, _, y in shuffled])
    write_csv(d / "OpinionLevelSentiment.csv", [[k * 1.5, k * 1.5 + 1, v, k, y] for _, v, k, y in segs], quote=False)
    feats = {s[0]: {m: rng.normal(3.0, 2.0, n).round(4) for m, n in DIMS.items()} for s in segs}
    for part in ("train", "test"):
        rows = [s for s in segs if VIDEOS[s[1]][0] == part][::-1]  # file order differs from sorted order
        for m in DIMS:
            write_csv(d / f"{m}_{part}0.csv", [[*feats[s][m], int(y >= 0)] for s, _, _, y in rows])
        write_csv(d / f"text_{part}.csv", [[row_of[s], *feats[s]["text"]] for s, _, _, _ in rows])
    ids = {v: [f"{v}_{k}" for k in ks] for v, (_, _, ks) in VIDEOS.items()}
    folds = [{v for v, (_, f, _) in VIDEOS.items() if f == fold} for fold in ("train", "valid", "test")]
    gcnet = [ids, {v: [y for s, vv, _, y in segs if vv == v] for v in VIDEOS}, {v: [""] * len(ids[v]) for v in ids},
             {v: np.array([f"WORDS OF {s.upper()}" for s in ids[v]]) for v in ids}, *folds]
    with open(d / "CMUMOSI_features_raw_2way.pkl", "wb") as f:
        pickle.dump(gcnet, f, protocol=4)
    return tmp_path, feats


@pytest.fixture
def tiny(tmp_path):
    return make_mosi(tmp_path)


def edit_csv(path: Path, fn) -> None:
    """Rewrite a quoted CSV after applying ``fn`` to its list of rows."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    write_csv(path, fn(rows))


def test_read_joins_ids_labels_features(tiny):
    root, feats = tiny
    t = read_mosi(root)
    truth = {s: (v, k, y) for s, v, k, y in segments()}
    assert sorted(t.ids) == sorted(truth) and len(t.ids) == 13
    for i, s in enumerate(t.ids):
        assert (t.videos[i], t.index[i], t.y[i]) == truth[s]
        assert t.bc_part[i] == VIDEOS[truth[s][0]][0]
        assert t.transcripts[i] == f"WORDS OF {s.upper()}"
        for m, key in (("text", "text"), ("audio", "audio"), ("vision", "video")):
            np.testing.assert_allclose(t.features[m][i], feats[s][key], rtol=1e-6)
    assert t.folds == {"train": {"vidA", "vid_B", "vidF"}, "valid": {"vidC"}, "test": {"vidD", "vidE"}}
    assert read_mosi(root / "CMU-MOSI").ids == t.ids  # root or root/CMU-MOSI


def test_context_window_hand_check(tiny):
    test = load_mosi(tiny[0], context=1, standardize=False, n_valid_videos=1)["test"]
    assert test.ids == ["vidD_1", "vidD_2", "vidD_10", "vidE_1"]  # numeric k order, grouped by video
    expect = torch.tensor([[0, 1, 1], [1, 1, 1], [1, 1, 0], [0, 1, 0]], dtype=torch.bool)
    for m in ("text", "audio", "vision"):
        assert test.x[m].shape[:2] == (4, 3) and torch.equal(test.mask[m], expect)
    assert torch.equal(test.target, torch.tensor([[0, 1, 0]] * 4, dtype=torch.bool))
    feats = tiny[1]
    x = test.x["text"]  # (4, 3, 100)
    np.testing.assert_allclose(x[0, 1], feats["vidD_1"]["text"], rtol=1e-6)
    np.testing.assert_allclose(x[0, 2], feats["vidD_2"]["text"], rtol=1e-6)
    np.testing.assert_allclose(x[1, 0], feats["vidD_1"]["text"], rtol=1e-6)
    np.testing.assert_allclose(x[2, 1], feats["vidD_10"]["text"], rtol=1e-6)
    assert not x[0, 0].any() and not x[2, 2].any() and not x[3, 0].any() and not x[3, 2].any()
    np.testing.assert_allclose(test.y.numpy(), [dict((s, y) for s, *_, y in segments())[i] for i in test.ids])


def test_context_zero_is_one_step(tiny):
    ds = load_mosi(tiny[0], n_valid_videos=1)
    for part in ds.values():
        assert part.target.shape == (len(part), 1) and bool(part.target.all())
        assert all(v.shape[1] == 1 for v in part.x.values())
    assert ds["train"].dims == {"text": 100, "audio": 73, "vision": 100}


def test_validation_is_whole_videos(tiny):
    ds = load_mosi(tiny[0], n_valid_videos=2, valid_seed=3)
    tr, va = ds["train"].meta["videos"], ds["valid"].meta["videos"]
    assert len(va) == 2 and not set(tr) & set(va)
    assert set(tr) | set(va) == {"vidA", "vid_B", "vidC", "vidF"}
    assert len(ds["train"]) + len(ds["valid"]) == 9
    assert {i.rsplit("_", 1)[0] for i in ds["valid"].ids} == set(va)
    assert load_mosi(tiny[0], n_valid_videos=2, valid_seed=3)["valid"].ids == ds["valid"].ids  # fixed seed
    assert ds["test"].meta == {"source": "mosi", "split": "bc", "part": "test", "text_features": "cnn",
                               "videos": ["vidD", "vidE"], "context": 0, "text_granularity": "utterance"}


def test_standardize_uses_train_statistics_only(tiny):
    raw = load_mosi(tiny[0], n_valid_videos=1, standardize=False)
    std = load_mosi(tiny[0], n_valid_videos=1)
    for m in ("text", "audio", "vision"):
        tr = raw["train"].x[m][:, 0].double()  # (n, d)
        mu, sd = tr.mean(0), tr.std(0, unbiased=False).clamp_min(1e-6)
        for part in ("train", "valid", "test"):
            want = (raw[part].x[m][:, 0].double() - mu) / sd
            torch.testing.assert_close(std[part].x[m][:, 0].double(), want, rtol=1e-4, atol=1e-4)
        assert std["train"].x[m].mean().abs() < 1e-4
        assert std["test"].x[m].mean().abs() > 1e-3  # test statistics were not used


def test_standard_split_and_leakage_guard(tiny):
    ds = load_mosi(tiny[0], split="standard", modalities=("audio",))
    assert [len(ds[k]) for k in ("train", "valid", "test")] == [7, 2, 4]
    assert ds["train"].modalities == ("audio",)
    for kw in ({"modalities": ("audio", "vision")}, {"modalities": ("text",)}):
        with pytest.raises(DataError, match=r"24 of the standard split's 31 test videos \(558 of 686"):
            load_mosi(tiny[0], split="standard", **kw)
    with pytest.raises(DataError, match="miar features --encoder minilm"):
        load_mosi(tiny[0], split="standard", modalities=("text",), text_features="minilm",
                  cache_dir=tiny[0] / "cache")


def fake_cache(cache: Path, segs: list[str], dim: int = 64) -> dict:
    """A ``mosi_static.npz`` as ``compute_features`` writes it, with known values."""
    rng, lengths = np.random.default_rng(2), np.arange(len(segs)) % 4 + 1
    tokens = np.zeros((len(segs), 4, dim), dtype=np.float16)
    for i, n in enumerate(lengths):
        tokens[i, :n] = rng.normal(size=(n, dim))
    arrays = dict(ids=np.array(segs), sentence=rng.normal(size=(len(segs), dim)).astype(np.float32),
                  tokens=tokens, lengths=lengths, encoder=np.array("static"), dim=np.array(dim))
    write_npz(cache / "mosi_static.npz", **arrays)
    return arrays


def test_encoder_text_features_and_tokens(tiny):
    segs = [s for s, *_ in segments()][::-1]
    arrays = fake_cache(tiny[0] / "cache", segs)
    kw = dict(text_features="static", cache_dir=tiny[0] / "cache", standardize=False)
    ds = load_mosi(tiny[0], split="standard", modalities=("text", "audio"), **kw)
    i = segs.index(ds["test"].ids[0])
    np.testing.assert_allclose(ds["test"].x["text"][0, 0], arrays["sentence"][i])
    tok = load_mosi(tiny[0], split="standard", text_granularity="token", modalities=("text", "audio"), **kw)
    t = tok["test"]
    n = arrays["lengths"][[segs.index(s) for s in t.ids]]
    assert t.x["text"].shape == (4, int(n.max()), 64) and t.x["audio"].shape == (4, 1, 73)
    assert t.mask["text"].sum(1).tolist() == n.tolist()
    np.testing.assert_allclose(t.x["text"][0, :n[0]], arrays["tokens"][i, :n[0]].astype(np.float32))
    with pytest.raises(ValueError, match="context=0"):
        load_mosi(tiny[0], context=1, text_granularity="token", **kw)


@pytest.mark.parametrize("breakage, message", [
    (lambda d: (d / "video_train0.csv").unlink(), r"video_train0.csv: missing file"),
    (lambda d: edit_csv(d / "audio_train0.csv", lambda r: r[:-1]), r"audio_train0.csv: has 8 rows, expected 9"),
    (lambda d: edit_csv(d / "text_test0.csv", lambda r: [r[0][:5] + ["abc"] + r[0][6:]] + r[1:]),
     r"text_test0.csv: non-numeric cell at row 0, column 5: 'abc'"),
    (lambda d: edit_csv(d / "text_train.csv", lambda r: [["99"] + r[0][1:]] + r[1:]),
     r"text_train.csv: row 0 points to transcripts.csv row 99"),
    (lambda d: edit_csv(d / "OpinionLevelSentiment.csv", lambda r: r[1:]), r"OpinionLevelSentiment.csv: no label"),
    (lambda d: edit_csv(d / "text_train.csv", lambda r: [r[0][:3] + ["7"] + r[0][4:]] + r[1:]),
     r"text_train.csv: columns 1..100 differ"),
    (lambda d: edit_csv(d / "audio_test0.csv", lambda r: [r[0][:-1] + [str(1 - int(r[0][-1]))]] + r[1:]),
     r"audio_test0.csv: binary label"),
    (lambda d: (d / "transcripts.csv").write_bytes((d / "transcripts.csv").read_bytes() + b"\xff\xfe bad\n"),
     r"transcripts.csv: not UTF-8 text"),
    (lambda d: (d / "audio_test0.csv").write_text(""), r"audio_test0.csv: has 0 rows"),
])
def test_bad_files_raise_data_error(tiny, breakage, message):
    breakage(tiny[0] / "CMU-MOSI")
    with pytest.raises(DataError, match=message):
        read_mosi(tiny[0])


def test_unknown_fold_video_and_missing_dir(tiny, tmp_path_factory):
    d = tiny[0] / "CMU-MOSI"
    obj = pickle.load(open(d / "CMUMOSI_features_raw_2way.pkl", "rb"))
    obj[6] = obj[6] | {"ghost"}
    pickle.dump(obj, open(d / "CMUMOSI_features_raw_2way.pkl", "wb"))
    with pytest.raises(DataError, match=r"CMUMOSI_features_raw_2way.pkl: unknown video ids \['ghost'\]"):
        read_mosi(tiny[0])
    with pytest.raises(DataError, match="no CMU-MOSI data"):
        read_mosi(tmp_path_factory.mktemp("empty"))


@pytest.mark.realdata
def test_real_bc_sizes_and_positives(mosi_root):
    t = read_mosi(mosi_root)
    assert len(t.ids) == 2199 and len(set(t.ids)) == 2199 and len(set(t.videos)) == 93
    assert tuple(int((t.bc_part == p).sum()) for p in ("train", "test")) == BC_SIZES
    ds = load_mosi_check(mosi_root)
    assert len(ds["test"]) == 752 and int((ds["test"].y >= 0).sum()) == 467
    assert len(ds["train"]) + len(ds["valid"]) == 1447
    assert len(ds["valid"].meta["videos"]) == 10 and len(ds["train"].meta["videos"]) == 52
    assert not set(ds["train"].meta["videos"]) & set(ds["valid"].meta["videos"])
    train_videos = {v for v, p in zip(t.videos, t.bc_part) if p == "train"}
    assert {i.rsplit("_", 1)[0] for i in ds["valid"].ids} <= train_videos  # whole training videos
    assert sum(v in set(ds["valid"].meta["videos"]) for v in t.videos) == len(ds["valid"])


@pytest.mark.realdata
def test_real_standard_split_and_leak_numbers(mosi_root):
    ds = load_mosi(mosi_root, split="standard", modalities=("audio",))
    assert tuple(len(ds[k]) for k in ("train", "valid", "test")) == STANDARD_SIZES
    t = read_mosi(mosi_root)
    bc_train = {v for v, p in zip(t.videos, t.bc_part) if p == "train"}
    test_videos = set(ds["test"].meta["videos"])
    assert len(test_videos & bc_train) == 24  # the numbers quoted in the leakage message
    assert sum(i.rsplit("_", 1)[0] in bc_train for i in ds["test"].ids) == 558


@pytest.mark.realdata
def test_real_labels_match_opinion_level_file(mosi_root):
    with open(mosi_root / "CMU-MOSI" / "OpinionLevelSentiment.csv", newline="") as f:
        gold = {f"{r[2]}_{int(r[3])}": float(r[4]) for r in csv.reader(f)}
    t = read_mosi(mosi_root)
    assert all(gold[s] == y for s, y in zip(t.ids, t.y.tolist()))
    ds = load_mosi(mosi_root, standardize=False)
    for part in ds.values():
        np.testing.assert_allclose(part.y.numpy(), [gold[s] for s in part.ids], rtol=0, atol=1e-6)


def test_missing_folds_file_is_one_line_error(tiny, tmp_path, capsys):
    """split='standard' without the folds pickle: one line naming the file, exit 2 (was a NameError)."""
    from miar.cli import main

    (tiny[0] / "CMU-MOSI" / "CMUMOSI_features_raw_2way.pkl").unlink()
    code = main(["train", "smoke", "--run-dir", str(tmp_path / "run"), "--set", "data.source=mosi",
                 "--set", f"data.path={tiny[0]}", "--set", "data.split=standard",
                 "--set", "data.modalities=[audio]", "--set", "model.name=late_fusion"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "CMUMOSI_features_raw_2way.pkl: missing file (needed for split='standard')" in err
