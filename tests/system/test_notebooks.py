"""The parameterized notebooks: each runs on its defaults with papermill, and unknown parameters fail.

``pytest --nbval-lax --nbval-kernel-name python3 notebooks/`` (needs ``miar`` importable by the kernel: ``pip install -e .`` or
``PYTHONPATH=.``) runs them under nbval too; ``test_nbval`` does that in the slow set.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from miar.records import RECORD_FILES

pm = pytest.importorskip("papermill")
REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


@pytest.fixture(autouse=True)
def kernel_env(monkeypatch):
    """The kernel inherits this environment: make it import this checkout's miar."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def _run(name: str, tmp_path: Path, **parameters) -> dict:
    out = tmp_path / f"{name}.out.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters, progress_bar=False,
                        cwd=str(tmp_path), kernel_name="python3")
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", ["train", "alignment", "data"])
def test_notebook_is_stripped_and_parameterized(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown"
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assigned = [n.targets[0].id for n in ast.parse(tagged[0].source).body]  # flat literal assignments
    from papermill.translators import PythonTranslator
    assert [p.name for p in PythonTranslator.inspect(tagged[0])] == assigned  # papermill sees each one


def test_train_defaults_write_a_run_record(tmp_path):
    nb = _run("train", tmp_path, run_dir=str(tmp_path / "run"))
    for f in RECORD_FILES:
        assert (tmp_path / "run" / f).is_file(), f
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["n"]["train"] == 256
    assert any(o.get("output_type") == "display_data" for c in nb["cells"] for o in c.get("outputs", []))


def test_unknown_parameter_fails(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="bogus"):
        _run("train", tmp_path, bogus=1, run_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # it failed before training


def test_wrong_parameter_type_fails(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="overrides"):
        _run("data", tmp_path, overrides="model.d_model=8")


def test_alignment_defaults_write_numbers_and_figures(tmp_path):
    _run("alignment", tmp_path, out_dir=str(tmp_path / "align"))
    numbers = json.loads((tmp_path / "align" / "alignment.json").read_text())
    assert set(numbers) == {"run_dir", "split", "tokens", "features", "projected"}
    assert numbers["tokens"]["groups"] == ["text", "audio", "vision", "fused"]
    assert numbers["features"]["groups"] == ["text", "audio", "vision"]
    assert numbers["projected"]["groups"] == ["text", "audio", "vision"]  # the loss pairs the modality tokens
    assert numbers["projected"]["acts_on"] == "tokens"
    for kind in ("tokens", "features", "projected"):
        assert {"modality_gap", "pairwise_gap", "silhouette_modality", "silhouette_polarity"} <= set(numbers[kind])
        assert 0 <= numbers[kind]["modality_gap"] <= 2
        assert (tmp_path / "align" / f"alignment_{kind}.png").stat().st_size > 1000


def test_data_defaults(tmp_path):
    nb = _run("data", tmp_path)
    text = json.dumps(nb["cells"])
    assert "modality_gap" in text and "len_mean" in text


@pytest.mark.slow
def test_nbval(tmp_path):
    """The documented command: ``pytest --nbval-lax --nbval-kernel-name python3 notebooks/`` (the kernel named
    because explore.ipynb's own, "miar", exists only where ``make lab`` installed it)."""
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-kernel-name", "python3", str(NOTEBOOKS),
                        "-q", "-p", "no:cacheprovider"],
                       cwd=REPO, capture_output=True, text=True, timeout=900, env=os.environ.copy())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_notebooks_are_stripped_and_stay_so():
    """.gitattributes filters notebooks/*.ipynb through nbstripout; each is already what the filter writes."""
    assert "notebooks/*.ipynb filter=nbstripout" in (REPO / ".gitattributes").read_text()
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        stripped = subprocess.run([sys.executable, "-m", "nbstripout", "--keep-id", "-t", str(nb)],
                                  capture_output=True, text=True, check=True, timeout=120).stdout
        assert stripped == nb.read_text(), f"{nb.name} has outputs or metadata nbstripout removes"
