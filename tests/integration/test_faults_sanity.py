"""Issue 12, class 2: a record is complete only when it is sane.

- nonsense config values are refused up front (miar.config_checks), whatever the value;
- every path into training validates the data as ``miar data check`` does (NaN or out-of-range labels:
  one line, exit 2, no run directory);
- ``miar collect`` checks each record's completeness and identity (miar.study.integrity) before counting it.
"""

import json
import math
import shutil
from pathlib import Path

import pytest
from faultkit import TINY, main, one_line, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from miar import config as C
from miar import train as T
from miar.data.batch import DataError
from miar.metrics import METRICS
from miar.records import RecordError
from miar.study.integrity import check_record
from miar.train import fit

BAD_VALUES = [  # (override, the key the error names)
    ("train.epochs=0", "train.epochs"), ("train.epochs=-3", "train.epochs"), ("train.patience=0", "train.patience"),
    ("model.d_model=31", "model.d_model"), ("model.n_heads=0", "model.n_heads"), ("data.batch_size=0", "data.batch_size"),
    ("train.lr=-0.001", "train.lr"), ("train.lr=0", "train.lr"), ("train.weight_decay=-1", "train.weight_decay"),
    ("loss.weight=-0.1", "loss.weight"), ("loss.temperature=0", "loss.temperature"),
    ("model.dropout=1.0", "model.dropout"), ("model.dropout=-0.1", "model.dropout"),
    ("data.context=-1", "data.context"), ("data.context=100000", "data.context"),
    ("data.n_valid_videos=0", "data.n_valid_videos"),
    ("train.grad_clip=-1", "train.grad_clip"), ("train.warmup_epochs=-1", "train.warmup_epochs"),
    ("model.misa_diff_weight=-1", "model.misa_diff_weight"), ("train.lr=.nan", "train.lr"),
    ("loss.weight=.inf", "loss.weight"), ("model.d_model=1000000000", "model.d_model"),
    ("model.n_layers=0", "model.n_layers"), ("train.criterion=nope", "train.criterion"),
    ("data.synthetic.n_train=1", "data.synthetic.n_train"), ("seed=-1", "seed"),
    ("data.synthetic.n_train=10000000", "data.synthetic"), ("data.synthetic.noise=-1", "data.synthetic.noise"),
]


@pytest.mark.parametrize("override, key", BAD_VALUES)
def test_nonsense_config_values_are_refused_up_front(override, key):
    with pytest.raises(C.ConfigError, match=key.replace(".", r"\.")):
        C.load("smoke", overrides=[override])


@pytest.mark.parametrize("n", [0, 62, 100])
def test_validation_videos_outside_the_bc_split_are_refused(n):
    with pytest.raises(C.ConfigError, match="n_valid_videos"):
        C.load("mosi", overrides=[f"data.n_valid_videos={n}"])


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["train.epochs", "train.patience", "data.batch_size", "model.n_heads", "data.context",
                            "model.n_layers"]),
       value=st.integers(min_value=-10**6, max_value=0))
def test_non_positive_counts_are_refused(key, value):
    if key == "data.context" and value == 0:
        C.load("smoke", overrides=[f"{key}={value}"])  # context 0 is the default, allowed
        return
    with pytest.raises(C.ConfigError, match=key.replace(".", r"\.")):
        C.load("smoke", overrides=[f"{key}={value}"])


@settings(max_examples=200, deadline=None)
@given(d=st.integers(1, 512), h=st.integers(1, 64))
def test_d_model_must_divide_by_heads(d, h):
    try:
        C.load("smoke", overrides=[f"model.d_model={d}", f"model.n_heads={h}"])
    except C.ConfigError as e:
        assert d % h or h > d, e
    else:
        assert d % h == 0


@settings(max_examples=200, deadline=None)
@given(p=st.floats(allow_nan=True, allow_infinity=True, width=64))
def test_dropout_outside_0_1_is_refused(p):
    try:
        C.load("smoke", overrides={"model": {"dropout": p}})
    except C.ConfigError as e:
        assert not 0 <= p < 1 and "model.dropout" in str(e)
    else:
        assert 0 <= p < 1 and math.isfinite(p)


@pytest.mark.parametrize("override", ["train.epochs=0", "train.patience=0", "model.d_model=1000000000",
                                      "data.batch_size=0"])
def test_cli_refuses_nonsense_before_writing(tmp_path, monkeypatch, override):
    monkeypatch.chdir(tmp_path)
    rc, _, err = main(["train", "smoke", "--set", override])
    one_line(rc, err, override.split("=")[0])
    assert snapshot(tmp_path) == {".": "dir"}


# ----------------------------------------------------------------------------- labels into training

def _corrupt(splits, split: str, index: int, value: float):
    y = splits[split].y.clone()
    y[index % len(y)] = value
    splits[split].y = y
    return splits


@settings(max_examples=25, deadline=None)
@given(split=st.sampled_from(["train", "valid", "test"]), index=st.integers(0, 10**6),
       value=st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf),
                       st.floats(3.001, 1e30), st.floats(-1e30, -3.001)))
def test_training_refuses_bad_labels_and_writes_nothing(tmp_path_factory, split, index, value):
    """``miar train`` used to train on NaN loss and write a complete record (exit 0)."""
    from miar.data import build_splits
    cfg = C.load("smoke", overrides=TINY)
    splits = _corrupt(build_splits(cfg), split, index, value)
    run_dir = tmp_path_factory.mktemp("labels") / "run"
    with pytest.raises(DataError, match=f"split '{split}'"):
        fit(cfg, run_dir, splits=splits)
    assert not run_dir.exists()  # refused before the run directory was made


def test_cli_train_refuses_nan_labels(tmp_path, monkeypatch):
    real = T.build_splits
    monkeypatch.setattr(T, "build_splits", lambda cfg: _corrupt(real(cfg), "train", 3, math.nan))
    monkeypatch.chdir(tmp_path)
    rc, _, err = main(["train", "smoke", *sum((["--set", o] for o in TINY), [])])
    one_line(rc, err, "non-finite labels")
    assert snapshot(tmp_path) == {".": "dir"}


@pytest.mark.realdata
def test_real_label_file_with_nan_or_out_of_range_is_refused(mosi_root, tmp_path, monkeypatch):
    """The released layout with a corrupted OpinionLevelSentiment.csv: ``miar train`` refuses in one line."""
    for bad in ("nan", "7.5"):
        data = tmp_path / bad / "data"
        shutil.copytree(mosi_root / "CMU-MOSI", data / "CMU-MOSI")
        f = data / "CMU-MOSI" / "OpinionLevelSentiment.csv"
        rows = [r.split(",") for r in f.read_text().splitlines()]
        # a row whose released binary label still agrees (nan >= 0 is False, 7.5 >= 0 is True), so the
        # files' own cross-check passes and the label check of every path into training is what refuses
        i = next(i for i, r in enumerate(rows) if (float(r[4]) < 0) == (bad == "nan"))
        rows[i][4] = bad
        f.write_text("\n".join(",".join(r) for r in rows) + "\n")
        monkeypatch.setenv("MIAR_DATA", str(data))
        monkeypatch.chdir(tmp_path / bad)
        rc, _, err = main(["train", "mosi", "--set", "train.epochs=1", "--run-dir", "run"])
        one_line(rc, err, "labels")
        assert not (tmp_path / bad / "run").exists()


# ----------------------------------------------------------------------------- collect: completeness and identity

@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    """results/ with one complete, sane record: runs/smoke/s1111 (and its tables, once collected)."""
    results = tmp_path_factory.mktemp("rec") / "results"
    cfg = C.load("smoke", overrides=TINY, seed=1111)
    fit(cfg, results / "runs" / "smoke" / "s1111")
    return results


def _copy(record: Path, tmp_path: Path) -> Path:
    shutil.copytree(record, tmp_path / "results")
    return tmp_path / "results"


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


TAMPER = {  # name -> (how, what the one-line error names)
    "empty test block": (lambda r: _edit_json(r / "metrics.json", lambda m: m.update(test={})), "lacks"),
    "test block without mae": (lambda r: _edit_json(r / "metrics.json", lambda m: m["test"].pop("mae")), "mae"),
    "metric as a string": (lambda r: _edit_json(r / "metrics.json", lambda m: m["test"].update(corr="0.5")), "corr"),
    "no n.test": (lambda r: _edit_json(r / "metrics.json", lambda m: m.pop("n")), "n.test"),
    "predictions short": (lambda r: (r / "predictions.csv").write_text(
        "\n".join((r / "predictions.csv").read_text().splitlines()[:-3]) + "\n"), "predictions.csv"),
    "predictions headerless": (lambda r: (r / "predictions.csv").write_text("1,2,3\n"), "predictions.csv"),
    "metrics not UTF-8": (lambda r: (r / "metrics.json").write_bytes(b'{"test": "\xff\xfe"}'), "UTF-8"),
    "metrics malformed": (lambda r: (r / "metrics.json").write_text('{"test": {'), "metrics.json"),
    "metrics a list": (lambda r: (r / "metrics.json").write_text('["test"]'), "metrics.json"),
    "env malformed": (lambda r: (r / "env.json").write_text("{nope"), "env.json"),
    "config not UTF-8": (lambda r: (r / "config.yaml").write_bytes(b"name: \xff\n"), "UTF-8"),
    "config malformed": (lambda r: (r / "config.yaml").write_text("name: [unclosed\n"), "config.yaml"),
    "config a scalar": (lambda r: (r / "config.yaml").write_text("just text\n"), "config.yaml"),
    "another model's record": (lambda r: (r / "config.yaml").write_text(
        (r / "config.yaml").read_text().replace("name: smoke", "name: mosi_bc_mult", 1)), "mosi_bc_mult"),
    "another seed's record": (lambda r: (r / "config.yaml").write_text(
        (r / "config.yaml").read_text().replace("seed: 1111", "seed: 1112", 1)), "seed"),
}


@pytest.mark.parametrize("name", list(TAMPER))
def test_collect_refuses_a_record_that_is_not_sane(record, tmp_path, name):
    how, needle = TAMPER[name]
    results = _copy(record, tmp_path)
    how(results / "runs" / "smoke" / "s1111")
    before = snapshot(results)
    rc, _, err = main(["collect", "--results", results])
    one_line(rc, err, "s1111", needle)
    assert snapshot(results) == before


@pytest.mark.parametrize("where", [("smoke", "s1111-copy"), ("mosi_bc_miar", "s1111"), ("smoke", "copy")])
def test_collect_refuses_a_copied_or_misplaced_record(record, tmp_path, where):
    results = _copy(record, tmp_path)
    shutil.copytree(results / "runs" / "smoke" / "s1111", results / "runs" / where[0] / where[1])
    before = snapshot(results)
    rc, _, err = main(["collect", "--results", results])
    one_line(rc, err, "/".join(where))
    assert snapshot(results) == before


@settings(max_examples=60, deadline=None)
@given(drop=st.sets(st.sampled_from(METRICS), min_size=1))
def test_any_missing_test_metric_makes_the_record_insane(record, tmp_path_factory, drop):
    results = _copy(record, tmp_path_factory.mktemp("drop"))
    run = results / "runs" / "smoke" / "s1111"
    _edit_json(run / "metrics.json", lambda m: [m["test"].pop(k) for k in drop])
    with pytest.raises(RecordError, match="lacks"):
        check_record(run)


@settings(max_examples=40, deadline=None)
@given(keep=st.integers(0, 31))
def test_any_prediction_count_but_n_test_is_insane(record, tmp_path_factory, keep):
    results = _copy(record, tmp_path_factory.mktemp("pred"))
    run = results / "runs" / "smoke" / "s1111"
    lines = (run / "predictions.csv").read_text().splitlines()
    (run / "predictions.csv").write_text("\n".join(lines[:1 + keep]) + "\n")
    with pytest.raises(RecordError, match="rows"):
        check_record(run)


def test_the_sane_record_is_collected(record, tmp_path):
    results = _copy(record, tmp_path)
    rc, out, err = main(["collect", "--results", results])
    assert rc == 0, err
    assert "smoke: 1 seed(s)" in out



JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(metrics=JSON, keep_test=st.booleans())
def test_any_metrics_json_is_accepted_or_one_record_error(record, tmp_path_factory, metrics, keep_test):
    """Whatever metrics.json holds, the record check raises a one-line RecordError or accepts it; never a traceback."""
    results = _copy(record, tmp_path_factory.mktemp("anyjson"))
    run = results / "runs" / "smoke" / "s1111"
    if keep_test and isinstance(metrics, dict):
        metrics = {**json.loads((run / "metrics.json").read_text()), **metrics}
    (run / "metrics.json").write_text(json.dumps(metrics))
    try:
        check_record(run)
    except RecordError as e:
        assert "\n" not in str(e) and str(run) in str(e)


@settings(max_examples=150, deadline=None)
@given(blob=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_config_yaml_bytes_are_accepted_or_one_record_error(record, tmp_path_factory, blob):
    results = _copy(record, tmp_path_factory.mktemp("anyyaml"))
    run = results / "runs" / "smoke" / "s1111"
    (run / "config.yaml").write_bytes(blob)
    with pytest.raises(RecordError) as e:  # no blob names smoke/s1111, so none is accepted
        check_record(run)
    assert "\n" not in str(e.value) and "config.yaml" in str(e.value)


def test_sweep_status_of_a_record_with_a_broken_config_is_incomplete(record, tmp_path):
    """The sweep reads config.yaml to compare configs: undecodable bytes make the run incomplete (redone), not a crash."""
    from miar.study.plan import Run, status
    results = _copy(record, tmp_path)
    (results / "runs" / "smoke" / "s1111" / "config.yaml").write_bytes(b"name: \xff\n")
    run = Run("smoke", "smoke", 1111, tuple(TINY), C.dump(C.load("smoke", overrides=TINY, seed=1111)))
    assert status(run, results) == "incomplete"
