"""A record proves itself before ``miar collect`` counts it (miar.study.verify, miar.records.RunRecord).

Two smoke runs are trained once for the module; each test edits a copy. A record made now carries
``digests.json``; a committed record made before digests has none but has its executed notebook:
:func:`as_committed` turns a fresh record into one of those, so the checks that stand behind the digests
(predictions recomputed, labels, ranges, copies, notebooks) are tested on their own. Every refusal is one
line naming the record, exit 2, and the results folder byte-for-byte as it was.
"""

import hashlib
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from faultkit import TINY, main, one_line, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from miar import config as C
from miar.metrics import compute_all
from miar.records import DIGESTS, RECORD_FILES, RunRecord, write_record
from miar.study.verify import TOLERANCE, DatasetLabels, verify
from miar.train import fit

SEEDS = (1111, 1112)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """results/ with two complete smoke records, runs/smoke/s1111 and s1112."""
    results = tmp_path_factory.mktemp("integrity") / "results"
    for seed in SEEDS:
        fit(C.load("smoke", overrides=TINY, seed=seed), results / "runs" / "smoke" / f"s{seed}")
    return results


@pytest.fixture
def results(trained, tmp_path) -> Path:
    shutil.copytree(trained, tmp_path / "results")
    return tmp_path / "results"


def run_of(results: Path, seed: int = 1111) -> Path:
    return results / "runs" / "smoke" / f"s{seed}"


def as_committed(run: Path) -> None:
    """Make ``run`` a record from before digests: no digests.json, its executed notebook in notebooks/."""
    (run / DIGESTS).unlink()
    seed = int(run.name[1:])
    nb = run.parents[2] / "notebooks" / run.parent.name / f"{run.name}.ipynb"
    nb.parent.mkdir(parents=True, exist_ok=True)
    params = {"experiment": "smoke", "overrides": TINY, "seed": seed, "run_dir": str(run)}
    nb.write_text(json.dumps({"cells": [], "metadata": {"papermill": {"parameters": params}},
                              "nbformat": 4, "nbformat_minor": 5}))


def edit_predictions(run: Path, edit) -> None:
    f = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    edit(f)
    f.to_csv(run / "predictions.csv", index=False)


def edit_metrics(run: Path, edit) -> None:
    m = json.loads((run / "metrics.json").read_text())
    edit(m)
    (run / "metrics.json").write_text(json.dumps(m, indent=2))


def recompute_metrics(run: Path) -> None:
    """Rewrite metrics.json's test block from predictions.csv, as a careful forger would."""
    f = pd.read_csv(run / "predictions.csv", dtype={"id": str})
    edit_metrics(run, lambda m: m.update(test=compute_all(f["pred"].to_numpy(), f["label"].to_numpy())))


def refresh_digests(run: Path) -> None:
    """Rewrite digests.json to match the files as they are now (the digests then prove nothing more)."""
    names = [*RECORD_FILES]
    table = {n: hashlib.sha256((run / n).read_bytes()).hexdigest() for n in names}
    (run / DIGESTS).write_text(json.dumps({"sha256": table}))


def refused(results: Path, *needles: str) -> str:
    before = snapshot(results)
    rc, _, err = main(["collect", "--results", results])
    line = one_line(rc, err, *needles)
    assert snapshot(results) == before, "a refused collect wrote or removed something"
    return line


# ----------------------------------------------------------------------------- what passes


def test_two_sane_records_are_collected_as_two_seeds(results):
    """Fresh records pass every check and count as one seed each."""
    rc, out, err = main(["collect", "--results", results])
    assert rc == 0, err
    assert "smoke: 2 seed(s)" in out


def test_a_fresh_record_carries_the_digest_of_every_file(results):
    """digests.json names every record file with its sha256."""
    run = run_of(results)
    table = json.loads((run / DIGESTS).read_text())["sha256"]
    assert set(RECORD_FILES) <= set(table)
    for name, digest in table.items():
        assert hashlib.sha256((run / name).read_bytes()).hexdigest() == digest, name


def test_a_committed_style_record_with_its_notebook_is_collected(results):
    """A record without digests is accepted when its notebook resolves to its config and its predictions agree."""
    for seed in SEEDS:
        as_committed(run_of(results, seed))
    rc, out, err = main(["collect", "--results", results])
    assert rc == 0, err


def test_recomputed_metrics_agree_within_the_tolerance(results):
    """Rounding the predictions to 6 decimals in the file keeps every recomputed metric within TOLERANCE."""
    records, worst = verify(results, [run_of(results, s) for s in SEEDS])
    assert len(records) == 2 and worst <= TOLERANCE


# ----------------------------------------------------------------------------- digests

DIGEST_EDITS = {  # name -> (edit of run s1111, the file the error names)
    "predictions set to their labels": (lambda r: edit_predictions(r, lambda f: f.__setitem__("pred", f["label"])),
                                        "predictions.csv"),
    "a label edited": (lambda r: edit_predictions(r, lambda f: f.loc.__setitem__((0, "label"), 2.5)), "predictions.csv"),
    "config edited": (lambda r: (r / "config.yaml").write_text((r / "config.yaml").read_text() + "# edited\n"),
                      "config.yaml"),
    "history edited": (lambda r: (r / "history.csv").write_text("epoch\n1\n"), "history.csv"),
    "env edited": (lambda r: (r / "env.json").write_text('{"device": "cuda"}'), "env.json"),
    "digests name a file outside": (lambda r: (r / DIGESTS).write_text(
        json.dumps({"sha256": {**json.loads((r / DIGESTS).read_text())["sha256"], "../x": "00"}})), DIGESTS),
    "digests lack a file": (lambda r: (r / DIGESTS).write_text(json.dumps({"sha256": {"config.yaml": "00"}})),
                            DIGESTS),
    "digests malformed": (lambda r: (r / DIGESTS).write_text('{"sha256": ["x"]}'), DIGESTS),
}


@pytest.mark.parametrize("name", list(DIGEST_EDITS))
def test_a_file_changed_after_its_digest_is_refused(results, name):
    """Any record file that no longer matches digests.json (or a malformed digests.json) refuses the record."""
    edit, needle = DIGEST_EDITS[name]
    edit(run_of(results))
    refused(results, "s1111", needle)


# ----------------------------------------------------------------------------- predictions against metrics.json

PREDICTION_EDITS = {  # name -> (edit of predictions.csv, what the error says)
    "predictions set to their labels": (lambda f: f.__setitem__("pred", f["label"]), "predictions.csv gives"),
    "one label edited": (lambda f: f.loc.__setitem__((0, "label"), f.loc[0, "label"] + 1.0), "predictions.csv gives"),
    "a duplicate id": (lambda f: f.loc.__setitem__((1, "id"), f.loc[0, "id"]), "appears twice"),
    "an empty id": (lambda f: f.loc.__setitem__((1, "id"), None), "has no id"),
    "a NaN prediction": (lambda f: f.loc.__setitem__((3, "pred"), math.nan), "not a finite number"),
    "an infinite prediction": (lambda f: f.loc.__setitem__((3, "pred"), math.inf), "not a finite number"),
    "a NaN label": (lambda f: f.loc.__setitem__((3, "label"), math.nan), "not a finite number"),
    "a word as a prediction": (lambda f: f.__setitem__("pred", f["pred"].astype(object)) or
                               f.loc.__setitem__((2, "pred"), "high"), "not a finite number"),
}


@pytest.mark.parametrize("name", list(PREDICTION_EDITS))
def test_predictions_that_disagree_with_the_metrics_are_refused(results, name):
    """Without digests, the test metrics are recomputed from predictions.csv: edited predictions or labels,
    repeated ids and non-finite values refuse the record."""
    run = run_of(results)
    as_committed(run)
    edit, needle = PREDICTION_EDITS[name]
    edit_predictions(run, edit)
    refused(results, "s1111", needle)


METRIC_EDITS = {  # name -> (block, metric, value)
    "NaN MAE": ("test", "mae", math.nan), "infinite correlation": ("test", "corr", math.inf),
    "accuracy above 1": ("test", "acc7", 1.5), "correlation below -1": ("test", "corr", -1.2),
    "negative MAE": ("test", "mae", -0.1), "null F1": ("test", "has0_f1", None),
    "slightly off MAE": ("test", "mae", "shift"), "NaN validation MAE": ("valid", "mae", math.nan),
    "validation accuracy above 1": ("valid", "has0_acc2", 2.0), "a word as validation MAE": ("valid", "mae", "low"),
    "true as validation F1": ("valid", "has0_f1", True),
}


@pytest.mark.parametrize("name", list(METRIC_EDITS))
def test_metrics_that_are_not_finite_in_range_or_recomputable_are_refused(results, name):
    """A NaN, infinite, out-of-range or altered metric is refused, not counted (nor left out of a mean)."""
    run = run_of(results)
    as_committed(run)
    block, metric, value = METRIC_EDITS[name]
    if value == "shift":
        value = json.loads((run / "metrics.json").read_text())[block][metric] + 10 * TOLERANCE
    edit_metrics(run, lambda m: m[block].update({metric: value}))
    refused(results, "s1111", metric)


# ----------------------------------------------------------------------------- labels, copies, notebooks


def test_a_label_that_differs_between_seeds_is_refused(results):
    """Where the dataset cannot be read, a label edited with its metrics recomputed still differs from the other
    seed's label for that utterance."""
    for seed in SEEDS:
        as_committed(run_of(results, seed))
    run = run_of(results, 1112)
    edit_predictions(run, lambda f: f.loc.__setitem__((0, "label"), f.loc[0, "label"] + 0.5))
    recompute_metrics(run)
    refused(results, "label of", "s1111")


def test_a_copied_run_with_its_seed_edited_is_refused(results):
    """A copy of one seed's record under another seed (config and digests made to match) is no new seed."""
    copy = run_of(results, 1113)
    shutil.copytree(run_of(results), copy)
    (copy / "config.yaml").write_text((copy / "config.yaml").read_text().replace("seed: 1111", "seed: 1113", 1))
    refresh_digests(copy)
    refused(results, "s1113", "a copy")


def test_an_edited_config_whose_notebook_was_deleted_is_refused(results):
    """Without digests, only the notebook shows which config ran: a record without either is refused."""
    run = run_of(results)
    as_committed(run)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("lr: 0.001", "lr: 0.002", 1))
    (results / "notebooks" / "smoke" / "s1111.ipynb").unlink()
    refused(results, "s1111", "no executed notebook")


def test_an_edited_config_beside_its_notebook_is_refused(results):
    """Without digests, a config that its notebook's parameters do not resolve to is refused."""
    run = run_of(results)
    as_committed(run)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("epochs: 1", "epochs: 2", 1))
    refused(results, "s1111.ipynb", "differs")


def test_the_record_reader_names_the_file_it_cannot_read(results):
    """RunRecord reads each file on first use and gives one line naming the file it cannot read."""
    run = run_of(results)
    (run / "env.json").write_text("[1]")
    rec = RunRecord(run)
    assert rec.config["seed"] == 1111 and rec.evaluated and len(rec.predictions) == rec.metrics["n"]["test"]
    with pytest.raises(OSError, match="env.json: expected a JSON object"):
        rec.env


# ----------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_a_committed_mosi_label_edited_with_its_metrics_is_refused(mosi_root, tmp_path):
    """A real-data record whose label was edited (metrics recomputed to match) differs from the dataset."""
    src = REPO / "results" / "runs" / "mosi_std_miar+tuned" / "s1111"
    nb = REPO / "results" / "notebooks" / "mosi_std_miar+tuned" / "s1111.ipynb"
    if not src.is_dir() or not nb.is_file():
        pytest.skip("the committed record runs/mosi_std_miar+tuned/s1111 is not in this checkout")
    results = tmp_path / "results"
    shutil.copytree(src, results / "runs" / src.parent.name / src.name)
    (results / "notebooks" / src.parent.name).mkdir(parents=True)
    shutil.copy(nb, results / "notebooks" / src.parent.name / nb.name)
    run = results / "runs" / src.parent.name / src.name
    records, _ = verify(results, [run])  # as committed: passes
    edit_predictions(run, lambda f: f.loc.__setitem__((0, "label"), -f.loc[0, "label"] + 0.5))
    recompute_metrics(run)
    refused(results, "s1111", "the dataset says")


@pytest.mark.realdata
@pytest.mark.slow
def test_every_committed_record_proves_itself(mosi_root):
    """Every committed record passes every check; its metrics agree with its predictions within TOLERANCE."""
    from miar.study.collect import find_runs

    for results in (REPO / "results", REPO / "results" / "tune"):
        complete, _ = find_runs(results)
        labels = DatasetLabels()
        records, worst = verify(results, complete, labels)
        assert len(records) == len(complete) and worst <= TOLERANCE
        assert labels.read == sum(r.config["data"].get("source") == "mosi" and r.evaluated for r in records)


def test_weights_may_be_removed_but_not_changed(tmp_path):
    """model.pt is digested when it is there: removing it (it is large, never committed) keeps the record valid,
    changing it does not."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(b"weights")
    write_record(run, config_yaml="seed: 1\n", history=[{"epoch": 1}], env={}, metrics={"test": None},
                 predictions=[{"id": "v_1", "pred": 0.5, "label": 1.0}])
    RunRecord(run).check_digests()
    (run / "model.pt").write_bytes(b"other weights")
    with pytest.raises(OSError, match="model.pt: its sha256 differs"):
        RunRecord(run).check_digests()
    (run / "model.pt").unlink()
    RunRecord(run).check_digests()


@settings(max_examples=150, deadline=None)
@given(blob=st.binary(max_size=120) | st.text(alphabet="id,prelabn01.-\n\" ", max_size=120).map(str.encode),
       header=st.booleans())
def test_any_predictions_bytes_are_read_or_one_record_error(trained, tmp_path_factory, blob, header):
    """Whatever predictions.csv holds, the reader returns checked predictions or one line naming the file."""
    run = tmp_path_factory.mktemp("anycsv") / "s1111"
    shutil.copytree(run_of(trained), run)
    (run / "predictions.csv").write_bytes(b"id,pred,label\n" * header + blob)
    try:
        f = RunRecord(run).predictions
    except OSError as e:
        assert "\n" not in str(e) and "predictions.csv" in str(e)
    else:
        assert f.index.is_unique and f.index.notna().all() and list(f.columns) == ["pred", "label"]
        assert f.notna().all().all()
