"""The package as a user gets it: a wheel built from the checkout, installed with its ``notebooks`` extra
(versions from ``constraints.txt``) into a fresh virtual environment outside the checkout, runs the
``smoke`` sweep and collects it from a directory outside the checkout.

What it proves: the wheel carries the notebooks and the experiments (found through ``importlib.resources``,
not through the source tree), the ``notebooks`` extra is enough for ``miar sweep`` and ``miar collect``,
and the sweep's kernels import the installed package. It installs from the package index pip is set up
with (here a local mirror and wheel directory; about a minute), so it runs in ``make test`` as its own step
(``make wheel-check``), not in the default pytest run."""

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.wheel]
TOP_LEVEL_SKIP = ("results", "_build", "dist", "data", "runs")  # not part of the package, and large


def run(cmd, cwd, env=None, timeout=900) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_wheel_in_a_fresh_venv_runs_a_sweep_outside_the_checkout(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    assert REPO not in root.parents
    src = root / "src"  # a copy: building in place would leave build/ in the checkout
    shutil.copytree(REPO, src, symlinks=True, ignore=lambda d, names: [
        n for n in names if n in ("__pycache__", "build") or n.endswith(".egg-info")
        or (Path(d) == REPO and (n.startswith(".") or n in TOP_LEVEL_SKIP))])
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "dist", src], cwd=root)
    (wheel,) = (root / "dist").glob("miar-*.whl")
    venv.create(root / "venv", with_pip=True)
    bin_ = root / "venv" / "bin"
    run([bin_ / "python", "-m", "pip", "install", "-q", "-c", REPO / "constraints.txt", f"{wheel}[notebooks]"],
        cwd=root)
    work = root / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_}{os.pathsep}{env.get('PATH', '')}"
    where = run([bin_ / "python", "-c", "import miar, miar.study.plan as p; print(miar.__file__); "
                 "print(p.notebooks_dir())"], cwd=work, env=env).stdout.split()
    assert all(str(root / "venv") in w for w in where), where  # the installed copy, not the checkout
    assert run([bin_ / "miar", "--version"], cwd=work, env=env).stdout.startswith("miar ")
    listed = run([bin_ / "miar", "list"], cwd=work, env=env).stdout
    assert "sweep       smoke" in listed and "experiment  mosi_bc_miar" in listed
    run([bin_ / "miar", "sweep", "smoke", "--results", work / "results"], cwd=work, env=env)
    run([bin_ / "miar", "collect", "--results", work / "results"], cwd=work, env=env)
    summary = json.loads((work / "results" / "summary.json").read_text())
    assert set(summary["experiments"]) == {"smoke", "smoke+no_contrastive"}
    assert all(e["n_seeds"] == 2 for e in summary["experiments"].values())
    env_json = json.loads(next((work / "results" / "runs").glob("*/*/env.json")).read_text())
    assert env_json["commit"] is None  # the runs imported the installed package, outside any checkout
