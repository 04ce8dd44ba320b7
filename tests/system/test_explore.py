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

from miar.report import error_analysis as E
from miar.report import explore as X
from miar.report import explore_pair as P

pm = pytest.importorskip("papermill")
REPO = Path(__file__).resolve().parents[2]
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
    assert names == ["results", "setting", "model_a", "model_b", "seed", "video", "label_min", "label_max",
                     "text", "data", "top", "folds", "interactive"]
    assert nb.metadata.kernelspec.name == "miar" and nb.metadata.kernelspec.display_name == "Python (miar)"


def test_explore_defaults_under_papermill(tmp_path):
    """Two models chosen (not the defaults) and a filter: the notebook runs on the committed results with the
    python3 kernel (``-k python3``; the "Python (miar)" kernel is only installed by ``make lab``), in seconds."""
    import time

    out = tmp_path / "explore.ipynb"
    t0 = time.monotonic()
    pm.execute_notebook(str(NOTEBOOK), str(out), progress_bar=False, cwd=str(REPO / "notebooks"),
                        kernel_name="python3", parameters={"top": 3, "model_a": "mult+tuned",
                                                           "model_b": "text_only+tuned", "label_min": 0.0,
                                                           "text": "good"})
    assert time.monotonic() - t0 < 60
    text = out.read_text()
    assert "image/png" in text and "no transcript filter" in text and "Non-interactive run" in text
    assert "`mosi_std_mult+tuned`" in text and "`mosi_std_text_only+tuned`" in text
    assert "fold records are hidden" in text
    worst = E.notebook_output(out, "worst-utterances")
    assert worst.count("\n") == 3 + 1  # header, rule and three rows
    assert "needs the transcripts" in E.notebook_output(out, "error-by-length")


def _pair_results(root: Path) -> Path:
    _fake_run(root, "mosi_std_a", 1, ROWS)
    _fake_run(root, "mosi_std_a", 2, [(i, p + 1.0, y) for i, p, y in ROWS])
    _fake_run(root, "mosi_std_b", 1, [(i, y, y) for i, _, y in ROWS])  # perfect
    _fake_run(root, "synth_gap", 1, ROWS)
    _fake_run(root, "synth_gap+no_norm", 1, ROWS)
    _fake_run(root, "legacy_a+r0f1", 1, ROWS[:2])
    return root


def test_names_split_into_setting_and_model_and_back():
    for name, parts in {"mosi_std_miar+tuned.no_norm": ("mosi_std", "miar+tuned.no_norm"),
                        "synth_gap+no_norm": ("synth_gap", "no_norm"), "synth_gap": ("synth_gap", "base"),
                        "legacy_miar+r0f2": ("legacy", "miar+r0f2"), "mosi_std_ft_miar": ("mosi_std", "ft_miar")}.items():
        assert P.split_name(name) == parts
        assert P.experiment_name(*parts) == name


def test_experiments_grouped_with_folds_hidden(tmp_path):
    r = _pair_results(tmp_path)
    assert P.grouped_experiments(r) == {"mosi_std": ["a", "b"], "synth_gap": ["base", "no_norm"]}
    assert P.grouped_experiments(r, folds=True)["legacy"] == ["a+r0f1"]
    assert "1 cross-validation fold records are hidden" in P.groups_note(r, False)
    assert P.groups_table(P.grouped_experiments(r), width=1)["Names"].tolist() == ["a, … (1 more)", "base, … (1 more)"]


def test_two_models_side_by_side_by_hand(tmp_path):
    """Averaged over seeds A's |error| is the mean over its two seeds; per seed it is that run's; B is exact."""
    r = _pair_results(tmp_path)
    mean = P.pair_predictions(r, "mosi_std", "a", "b")
    assert mean["abs_err_a"].tolist() == [1.5, 0.5, 2.5, 1.5] and mean["abs_err_b"].tolist() == [0.0] * 4
    assert mean["seeds_a"].tolist() == [2] * 4
    one = P.pair_predictions(r, "mosi_std", "a", "b", seed=1)
    assert one["abs_err_a"].tolist() == [2.0, 0.0, 2.0, 1.0]
    with pytest.raises(FileNotFoundError, match=r"seeds of 'mosi_std_b': \[1\]"):
        P.pair_predictions(r, "mosi_std", "a", "b", seed=2)
    with pytest.raises(FileNotFoundError, match="models there: a, b"):
        P.pair_predictions(r, "mosi_std", "a", "c")
    assert P.side(mean, "a")[["pred", "abs_err", "err"]].values.tolist() == [
        [1.5, 1.5, -1.5], [0.5, 0.5, 0.5], [-0.5, 2.5, 2.5], [2.5, 1.5, 1.5]]  # one model's view, for worst_table
    s = P.pair_summary(mean, "a", "b").set_index("Model")
    assert s.loc["a", "MAE"] == 1.5 and s.loc["b", "Closer to the label (%)"] == 100.0
    v = P.per_video_pair(mean)
    assert v["Video"].tolist() == ["vidA", "vid_B"] and v["B − A"].tolist() == [-1.0, -2.0]
    assert P.per_seed_table(r, "mosi_std", "a", "b").fillna(-1).values.tolist() == [[1, 1.25, 0.0], [2, 1.75, -1]]
    u = P.utterance_pair_table(mean, 1, {"vid_B_1": "BAD"})
    assert u["Utterance"].tolist() == ["vid_B_1"] and u["Transcript"].tolist() == ["BAD"]


def test_filters_by_video_label_and_text(tmp_path):
    df = P.pair_predictions(_pair_results(tmp_path), "mosi_std", "a", "b")
    out, note = P.filter_pairs(df, video="vid_B")
    assert out["id"].tolist() == ["vid_B_1", "vid_B_12"] and "video 'vid_B'" in note
    out, _ = P.filter_pairs(df, label_min=0.5, label_max=3.0)
    assert out["id"].tolist() == ["vidA_1", "vid_B_12"]
    texts = {"vidA_1": "A Good film", "vidA_2": "ok", "vid_B_1": "bad", "vid_B_12": "good and bad"}
    out, note = P.filter_pairs(df, text="GOOD", texts=texts)
    assert out["id"].tolist() == ["vidA_1", "vid_B_12"] and note.startswith("2 of 4 utterances")
    out, note = P.filter_pairs(df, text="good")
    assert len(out) == 4 and "no transcript filter" in note


def test_explore_rejects_unknown_parameters(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="bogus"):
        pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "x.ipynb"), progress_bar=False,
                            cwd=str(REPO / "notebooks"), kernel_name="python3", parameters={"bogus": 1})


def test_explore_under_nbval():
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-kernel-name", "python3", str(NOTEBOOK),
                        "-q", "-p", "no:cacheprovider"],
                       cwd=REPO, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_controls_switch_setting_and_models_headless(tmp_path):
    """The notebook's interactive controls build without a front end; a new setting offers its own models."""
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    r = _pair_results(tmp_path)
    w = P.controls(r, P.grouped_experiments(r), "mosi_std", "a", "b").widget
    setting, a, b = w.children[:3]
    assert [c.description for c in w.children[:7]] == ["setting", "model A", "model B", "seed (0: mean)", "video",
                                                       "labels", "transcript"]
    setting.value = "synth_gap"
    assert tuple(a.options) == tuple(b.options) == ("base", "no_norm")
