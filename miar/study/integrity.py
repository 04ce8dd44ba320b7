"""A run counts only when it is sane: its record is whole and is the run its directory names.

:func:`record_problem` reads a run record the way ``miar collect`` will and returns the first problem, or None:

- every record file is there and readable: ``metrics.json`` and ``env.json`` UTF-8 JSON objects,
  ``config.yaml`` a UTF-8 YAML mapping, ``predictions.csv`` a CSV with ``id, pred, label``;
- completeness: ``metrics.json`` has a ``test`` block with every metric of :data:`miar.metrics.METRICS`
  (a number or null) and ``n.test``, and ``predictions.csv`` has exactly ``n.test`` rows; or, for a run made
  with ``train.evaluate_test=false`` (a tuning trial), ``test`` is null, ``valid`` is there and
  ``predictions.csv`` is empty;
- identity (``identity=True``): the directory is ``<name>/s<seed>`` of the record's ``config.yaml``, so a copy
  (``s1111-copy``) or another experiment's record placed under an experiment is caught.

:func:`notebook_problem` says whether an executed notebook is whole (JSON with cells and metadata): a sweep
run is complete only when its record and its notebook are (:func:`miar.study.plan.status`).
"""

from __future__ import annotations

import csv
from pathlib import Path

from miar.metrics import METRICS
from miar.records import RECORD_FILES, RecordError, read_json, read_yaml
from miar.records import read_text as _text


def _prediction_rows(path: Path) -> int:
    rows = list(csv.reader(_text(path).splitlines()))
    if not rows or rows[0][:1] != ["id"] or not {"pred", "label"} <= set(rows[0]):
        raise RecordError(f"{path}: no 'id,pred,label' header")
    return len(rows) - 1


def _completeness(run_dir: Path, metrics: dict) -> None:
    if "test" in metrics and metrics["test"] is None:  # train.evaluate_test=false (a tuning trial)
        _validation_only(run_dir, metrics)
        return
    test = metrics.get("test")
    if not isinstance(test, dict):
        raise RecordError(f"{run_dir / 'metrics.json'}: no 'test' block")
    missing = [m for m in METRICS if m not in test]
    if missing:
        raise RecordError(f"{run_dir / 'metrics.json'}: the test block lacks {', '.join(missing)}")
    bad = [m for m in METRICS if test[m] is not None and (isinstance(test[m], bool)
                                                           or not isinstance(test[m], (int, float)))]
    if bad:
        raise RecordError(f"{run_dir / 'metrics.json'}: test {bad[0]} is not a number ({test[bad[0]]!r})")
    n = metrics.get("n", {}).get("test") if isinstance(metrics.get("n"), dict) else None
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise RecordError(f"{run_dir / 'metrics.json'}: no test size n.test")
    rows = _prediction_rows(run_dir / "predictions.csv")
    if rows != n:
        raise RecordError(f"{run_dir / 'predictions.csv'}: {rows} rows, but metrics.json's n.test is {n}")


def _validation_only(run_dir: Path, metrics: dict) -> None:
    """A record that never evaluated the test split: a validation block, no predictions."""
    valid = metrics.get("valid")
    if not isinstance(valid, dict) or not valid:
        raise RecordError(f"{run_dir / 'metrics.json'}: no 'valid' block (and no test block)")
    if _text(run_dir / "predictions.csv").strip():
        raise RecordError(f"{run_dir / 'predictions.csv'}: predictions, but the test split was not evaluated")


def _identity(run_dir: Path, cfg: dict) -> None:
    name, seed = cfg.get("name"), cfg.get("seed")
    where = run_dir / "config.yaml"
    if name != run_dir.parent.name:
        raise RecordError(f"{where}: a record of {name!r} under experiment {run_dir.parent.name!r}")
    if run_dir.name != f"s{seed}":
        raise RecordError(f"{where}: seed {seed!r} in a run directory named {run_dir.name!r} (expected s{seed})")


def check_record(run_dir: Path, identity: bool = True) -> None:
    """Raise a one-line :class:`RecordError` naming the file unless ``run_dir`` holds a whole, sane record."""
    run_dir = Path(run_dir)
    missing = [f for f in RECORD_FILES if not (run_dir / f).is_file()]
    if missing:
        raise RecordError(f"{run_dir}: incomplete run record (no {', '.join(missing)})")
    metrics = read_json(run_dir / "metrics.json")
    read_json(run_dir / "env.json")
    cfg = read_yaml(run_dir / "config.yaml")
    _completeness(run_dir, metrics)
    if identity:
        _identity(run_dir, cfg)


def record_problem(run_dir: Path, identity: bool = True) -> str | None:
    """The first problem :func:`check_record` finds, or None."""
    try:
        check_record(run_dir, identity)
    except RecordError as e:
        return str(e)
    return None


def notebook_problem(path: Path) -> str | None:
    """None when ``path`` is a whole executed notebook (JSON with cells and metadata), else the problem."""
    path = Path(path)
    if not path.is_file():
        return f"{path}: no executed notebook"
    try:
        nb = read_json(path)
    except RecordError as e:
        return str(e)
    if not isinstance(nb.get("cells"), list) or not isinstance(nb.get("metadata"), dict) or "nbformat" not in nb:
        return f"{path}: not a whole notebook (no cells, metadata or nbformat)"
    return None


__all__ = ["check_record", "notebook_problem", "read_json", "read_yaml", "record_problem"]
