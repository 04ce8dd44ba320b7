"""What a Dask worker runs for ``miar align``: one experiment's alignment notebook, staged, then committed only
while the driver that asked for it still holds the results lock.

:func:`execute_alignment` runs the packaged ``alignment.ipynb`` in the worker's reused kernel with ``out_dir``
set to an attempt folder under the driver's staging directory (:mod:`miar.study.staging`), so nothing reaches
the run records while it executes. It then stamps each staged ``alignment.json`` with the weights it analysed
(``model_sha256``, as :func:`miar.study.align.stamp` writes it) and, inside :func:`miar.study.lock.fenced`, moves each run's
figures and then its ``alignment.json`` (the file that makes the run current) into the run directory, and the
notebook into place. A job whose token is no longer current (the driver is gone, or another sweep took the
lock over) runs nothing if that was so when it started, and commits nothing if it became so meanwhile, as a
sweep's runs do (:func:`miar.study.worker.execute_run`). A failed notebook commits only itself, for the error
it shows. The files depend only on the records, so an execution Dask repeats replaces them with the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

from miar.records import atomic_write
from miar.study import staging
from miar.study.lock import current_token, fenced
from miar.study.worker import FENCED, _kernel_env, fingerprint


def model_digest(run_dir: Path) -> str:
    """sha256 of the run's ``model.pt``: which weights an ``alignment.json`` analysed."""
    return hashlib.sha256((run_dir / "model.pt").read_bytes()).hexdigest()


def staged_dirs(run_dirs: list[str], out_dir: Path) -> dict[str, Path]:
    """Where the notebook writes each run's files given ``out_dir`` (as its ``out_for`` does): ``out_dir``
    itself for one run, ``out_dir/<experiment>/<run>`` for several."""
    if len(run_dirs) == 1:
        return {run_dirs[0]: out_dir}
    return {d: out_dir / Path(d).parent.name / Path(d).name for d in run_dirs}


def _execute(job: dict, output: Path, out_dir: Path) -> str | None:
    """Run the notebook into ``output`` with its figures and numbers under ``out_dir``; the error or None."""
    import papermill as pm  # lazy: the notebooks extra

    from miar.study import papermill_engine as kernel
    from miar.study.notebook_io import execute_notebook

    err = None
    try:
        execute_notebook(job["notebook"], output, parameters=dict(job["parameters"], out_dir=str(out_dir)),
                         progress_bar=False, log_output=False, cwd=job["cwd"], engine_name=kernel.ENGINE)
    except pm.PapermillExecutionError as e:
        err = f"{e.ename}: {e.evalue}"
    except Exception as e:  # kernel died, notebook unreadable, ...
        err = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if err is not None:
        kernel.shutdown()  # a failed kernel is not reused
    return err


def execute_alignment(job: dict) -> dict:
    """The task (built by :func:`miar.study.align._job`): ``{"key", "error", "seconds", "outcome"}``, outcome
    ``committed``, ``fenced`` (see the module docstring) or ``refused`` (another ``miar`` on this worker)."""
    t0, cwd = time.time(), Path(job["cwd"])
    out = {"key": job["key"], "error": None, "outcome": "refused"}
    if job.get("fingerprint") not in (None, fingerprint()):
        return dict(out, error="worker runs another miar than the driver", seconds=0.0)
    results = cwd / job.get("results", ".")
    if job.get("fence") is not None and current_token(results) != job["fence"]:
        return dict(out, error=FENCED, outcome="fenced", seconds=time.time() - t0)  # queued, started too late
    _kernel_env(job)
    attempt = cwd / job["staging"] / uuid.uuid4().hex[:16]  # absolute: a reused kernel's cwd is not trusted
    nb, final_nb = attempt / "alignment.ipynb", cwd / job["output"]
    dirs = staged_dirs(job["parameters"]["run_dirs"], attempt / "runs")
    attempt.mkdir(parents=True, exist_ok=True)
    err = _execute(job, nb, attempt / "runs")
    if nb.is_file():  # the notebook reads as if it had written in place (longest first: s1 is a prefix of s11)
        pairs = [(str(s), str(cwd / d)) for d, s in dirs.items()] + [(str(nb), str(final_nb))]
        staging.relocate(nb, sorted(pairs, key=lambda p: -len(p[0])))
    outcome = _commit(job, nb, final_nb, {} if err is not None else dirs, results)
    staging.discard(attempt)
    return dict(out, error=FENCED if outcome == "fenced" else err, outcome=outcome, seconds=time.time() - t0)


def _commit(job: dict, nb: Path, final_nb: Path, dirs: dict[str, Path], results: Path) -> str:
    """Stamp and move every staged file into its run directory, ``alignment.json`` last, then the notebook;
    all of it while the job's sweep still holds ``results`` (``committed``), else nothing (``fenced``)."""
    cwd = Path(job["cwd"])
    for d, staged in dirs.items():
        a = staged / "alignment.json"
        atomic_write(a, json.dumps({**json.loads(a.read_text()), "model_sha256": model_digest(cwd / d)}, indent=2)
                     + "\n")
    with fenced(results, job.get("fence"), job["key"]) as current:
        if not current:
            return "fenced"
        for d, staged in dirs.items():
            files = sorted(staged.iterdir(), key=lambda p: (p.name == "alignment.json", p.name))
            for f in files:
                os.replace(f, cwd / d / f.name)
        if nb.is_file():
            final_nb.parent.mkdir(parents=True, exist_ok=True)
            os.replace(nb, final_nb)
    return "committed"


__all__ = ["execute_alignment", "model_digest", "staged_dirs"]
