"""``notebooks/explore.ipynb`` and the error analysis behind it: the notebook runs on its defaults under papermill
and nbval (committed results, no data, seconds), rejects unknown parameters, and the helpers compute what they
say on a hand-made prediction table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from miar.report import errors as E
from miar.report import explore as X

pm = pytest.importorskip("papermill")
REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explore.ipynb"


@pytest.fixture(autouse=True)
def kernel_env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def _fake_run(root: Path, exp: str, seed: int, rows, gate=None) -> Path:
    d = root / "runs" / exp / f"s{seed}"
    d.mkdir(parents=True)
    pd.DataFrame(rows, columns=["id", "pred", "label"]).to_csv(d / "predictions.csv", index=False)
    m = {"valid": {"mae": 0.5}, "test": {"mae": 0.7, "has0_acc2": 0.75}}
    if gate:
        m["gate_mean_test"] = gate
    (d / "metrics.json").write_text(json.dumps(m))
    return d


ROWS = [("vidA_1", 1.0, 3.0), ("vidA_2", 0.0, 0.0), ("vid_B_1", -1.0, -3.0), ("vid_B_12", 2.0, 1.0)]


def test_error_tables_by_hand(tmp_path):
    _fake_run(tmp_path, "e", 1, ROWS)
    _fake_run(tmp_path, "e", 2, [(i, p + 1.0, y) for i, p, y in ROWS])
    p = E.predictions(tmp_path, "e")
    assert p["video"].tolist() == ["vidA", "vidA", "vid_B", "vid_B"]  # up to the last "_"
    assert p["pred"].tolist() == [1.5, 0.5, -0.5, 2.5] and p["seeds"].tolist() == [2, 2, 2, 2]
    assert p["abs_err"].tolist() == [1.5, 0.5, 2.5, 1.5]  # mean over seeds of |pred - label|
    v = E.per_video(p)
    assert v["video"].tolist() == ["vid_B", "vidA"] and v["mae"].tolist() == [2.0, 1.0]
    assert E.worst(p, 1)["id"].item() == "vid_B_1"
    t = E.by_intensity(p).set_index("label_class")
    assert t.loc["+3", "utterances"] == 1 and t.loc["+3", "mean_err"] == -1.5 and t.loc["−2", "utterances"] == 0
    assert E.by_position(p)["position"].tolist() == ["1", "2", "10+"]


def test_video_column_of_newer_records_is_used(tmp_path):
    d = _fake_run(tmp_path, "e", 1, ROWS)
    df = pd.read_csv(d / "predictions.csv").assign(video="V")
    df.to_csv(d / "predictions.csv", index=False)
    assert set(E.predictions(tmp_path, "e")["video"]) == {"V"}


def test_agreement_and_disagreements(tmp_path):
    _fake_run(tmp_path, "a", 1, ROWS)
    _fake_run(tmp_path, "b", 1, [(i, -p, y) for i, p, y in ROWS])
    a, b = E.predictions(tmp_path, "a"), E.predictions(tmp_path, "b")
    s = E.agreement(a, b)
    assert s["utterances"] == 4 and s["differ"] == 3 and s["a_right_when_differ"] == 3
    d = E.disagreements(a, b, 2)
    assert d["gap"].tolist() == [4.0, 2.0] and d["closer"].tolist() == ["a", "a"]


def test_notebook_output_reads_a_tagged_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x", metadata={"tags": ["worst-utterances"]})
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "| a |\n|---|"})]
    nb.cells = [nbformat.v4.new_code_cell("y"), cell]
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert E.notebook_output(tmp_path / "x.ipynb", "worst-utterances") == "| a |\n|---|"
    assert E.notebook_output(tmp_path / "x.ipynb", "other") is None


def test_find_run_names_what_exists(tmp_path):
    _fake_run(tmp_path, "e", 1, ROWS, gate={"text": 0.5})
    assert X.gate_weights(X.find_run(tmp_path, "e", 1)) == {"text": 0.5}
    with pytest.raises(FileNotFoundError, match=r"s1"):
        X.find_run(tmp_path, "e", 7)
    assert X.experiments(tmp_path) == {"e": [1]}
    assert X.pick_run(tmp_path, "e", 1) == ("e", 1, "")
    exp, seed, note = X.pick_run(tmp_path, "not_run", 3)  # the book's default before the study has run
    assert (exp, seed) == ("e", 1) and "`not_run` seed 3 has no run record yet" in note
    with pytest.raises(FileNotFoundError, match="no run records"):
        X.pick_run(tmp_path / "empty", "e", 1)
    texts = {"vidA_1": "A GOOD FILM", "vidA_2": "OK", "vid_B_1": "BAD", "vid_B_12": "ONE TWO THREE FOUR FIVE SIX"}
    t = X.by_length(X.run_predictions(X.find_run(tmp_path, "e", 1)), texts)
    assert t["Utterances"].tolist() == [3, 1, 0, 0, 0]
    w = X.worst_table(X.run_predictions(X.find_run(tmp_path, "e", 1)), texts, 2)
    assert w.columns.tolist() == ["Utterance", "Label", "Prediction", "Absolute error", "Words", "Transcript"]


def test_explore_is_stripped_and_parameterized():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    from papermill.translators import PythonTranslator
    names = [p.name for p in PythonTranslator.inspect(params[0])]
    assert names == ["results", "experiment", "seed", "data", "top", "interactive"]


def test_explore_defaults_under_papermill(tmp_path):
    out = tmp_path / "explore.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), progress_bar=False, cwd=str(REPO / "notebooks"),
                        kernel_name="python3", parameters={"top": 3})
    text = out.read_text()
    assert "Has0 Acc-2" in text and "image/png" in text and "no transcripts" in text
    assert "Non-interactive run" in text
    worst = E.notebook_output(out, "worst-utterances")
    assert worst.count("\n") == 3 + 1  # header, rule and three rows


def test_explore_rejects_unknown_parameters(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="bogus"):
        pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "x.ipynb"), progress_bar=False,
                            cwd=str(REPO / "notebooks"), kernel_name="python3", parameters={"bogus": 1})


def test_explore_under_nbval():
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", str(NOTEBOOK), "-q", "-p", "no:cacheprovider"],
                       cwd=REPO, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
