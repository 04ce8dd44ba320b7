"""Run records: the files a run leaves behind, and the one place that reads them.

Written atomically so a crash never leaves a half-written file that looks complete; ``metrics.json`` is
written last and marks completion. Layout of a run directory::

    config.yaml       the resolved config (``miar train run_dir/config.yaml`` reruns the run)
    history.csv       one row per epoch: losses by name, validation metrics, seconds
    predictions.csv   test ids, predictions, labels
    env.json          git commit, package versions, device, threads, wall time (:mod:`miar.environment`)
    digests.json      sha256 of every other file above (and of model.pt), see below
    metrics.json      valid and test metric dicts, bootstrap CIs, best epoch, criterion
    model.pt          (only with train.save_model) the selected weights, a state dict

``digests.json`` is a file of its own rather than a block of ``env.json``: a file cannot hold its own digest,
and ``env.json`` is a record file that deserves one. It is written just before ``metrics.json`` but covers
``metrics.json``'s bytes too (they are known by then), so every complete record made by this code carries
digests of all its files; records made before it have none (``RunRecord.check_digests`` accepts those).

:class:`RunRecord` reads a record: its config, metrics, env, history and predictions (each a one-line
:class:`RecordError` naming the file when it cannot be read), whether it is complete, and its digests.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from miar.atomic import (  # noqa: F401 (re-exported: the writers' one import)
    RecordError,
    atomic_write,
    check_writable,
    csv_text,
    fsync_dir,
    stage,
)
from miar.environment import cpu_model, environment, git_commit, simd_level  # noqa: F401 (re-exported)

if TYPE_CHECKING:  # numpy and pandas load on first read, not on import: most importers only write
    import numpy as np

CONFIG, HISTORY, PREDICTIONS, ENV, METRICS_FILE = (
    "config.yaml", "history.csv", "predictions.csv", "env.json", "metrics.json")
RECORD_FILES = (CONFIG, HISTORY, PREDICTIONS, ENV, METRICS_FILE)
DIGESTS = "digests.json"
MODEL = "model.pt"
CHECKPOINT = "checkpoint.pt"  # per-epoch training state while a run is in progress


def is_complete(run_dir: Path) -> bool:
    """True when every record file exists and ``metrics.json`` parses with a test section."""
    run_dir = Path(run_dir)
    if not all((run_dir / f).is_file() for f in RECORD_FILES):
        return False
    try:
        return "test" in json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return False


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_record(run_dir: Path, *, config_yaml: str, history: list[dict], predictions: list[dict],
                 env: dict, metrics: dict) -> None:
    """Write every record file atomically, then ``digests.json`` (covering them all, ``model.pt`` when it is
    there, and the ``metrics.json`` about to be written), then ``metrics.json``, which marks completion."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {CONFIG: config_yaml.encode(), HISTORY: csv_text(history).encode(),
             PREDICTIONS: csv_text(predictions).encode(), ENV: (json.dumps(env, indent=2) + "\n").encode(),
             METRICS_FILE: (json.dumps(metrics, indent=2) + "\n").encode()}
    for name in (CONFIG, HISTORY, PREDICTIONS, ENV):
        atomic_write(run_dir / name, files[name])
    digests = {name: sha256(data) for name, data in files.items()}
    if (run_dir / MODEL).is_file():
        digests[MODEL] = sha256((run_dir / MODEL).read_bytes())
    atomic_write(run_dir / DIGESTS, json.dumps({"sha256": dict(sorted(digests.items()))}, indent=2) + "\n")
    atomic_write(run_dir / METRICS_FILE, files[METRICS_FILE])


# ----------------------------------------------------------------------------- reading


def read_text(path: Path) -> str:
    """A record file's UTF-8 text, or a one-line :class:`RecordError` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RecordError(f"{path}: not UTF-8 text (undecodable byte at offset {e.start})") from None
    except OSError as e:
        raise RecordError(f"{path}: cannot read ({e.strerror or e})") from None


def read_json(path: Path) -> dict:
    """A record's JSON object, or a one-line :class:`RecordError` naming the file."""
    try:
        data = json.loads(read_text(path))
    except ValueError as e:
        raise RecordError(f"{path}: malformed JSON ({e})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_yaml(path: Path) -> dict:
    """A record's YAML mapping, or a one-line :class:`RecordError` naming the file."""
    import yaml  # lazy: most importers of miar.records only write

    try:  # libyaml's safe loader where PyYAML has it (the same documents, ~10x faster: collect reads hundreds)
        data = yaml.load(read_text(path), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise RecordError(f"{path}: malformed YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    return data


class RunRecord:
    """One run record ``<results>/runs/<experiment>/<run>/``, each file read once, on first use."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)

    def __repr__(self) -> str:
        return f"RunRecord({str(self.dir)!r})"

    @property
    def experiment(self) -> str:
        return self.dir.parent.name

    @property
    def run(self) -> str:
        return self.dir.name

    @property
    def complete(self) -> bool:
        return is_complete(self.dir)

    @cached_property
    def config(self) -> dict:
        return read_yaml(self.dir / CONFIG)

    @cached_property
    def metrics(self) -> dict:
        return read_json(self.dir / METRICS_FILE)

    @cached_property
    def env(self) -> dict:
        return read_json(self.dir / ENV)

    @cached_property
    def history(self):
        """history.csv as a DataFrame (empty when the file is)."""
        import pandas as pd

        text = read_text(self.dir / HISTORY)
        return pd.read_csv(io.StringIO(text)) if text.strip() else pd.DataFrame()

    @property
    def evaluated(self) -> bool:
        """Whether the test split was evaluated (False for a validation-only record, ``test: null``)."""
        return self.metrics.get("test") is not None

    @cached_property
    def predictions(self):
        """predictions.csv as a DataFrame indexed by id, columns pred and label (float64), sorted by id;
        a one-line RecordError for missing columns, a repeated id, or a value that is not a finite number."""
        import pandas as pd

        path = self.dir / PREDICTIONS
        try:
            f = pd.read_csv(io.StringIO(read_text(path)), dtype={"id": str})
        except (ValueError, pd.errors.ParserError) as e:
            raise RecordError(f"{path}: not a CSV ({str(e).splitlines()[0]})") from None
        if not {"id", "pred", "label"} <= set(f.columns) or f.empty:
            raise RecordError(f"{path}: needs id, pred, label columns and at least one row")
        if f["id"].isna().any():
            raise RecordError(f"{path}: row {int(f['id'].isna().to_numpy().nonzero()[0][0]) + 1} has no id")
        dup = f["id"][f["id"].duplicated()]
        if len(dup):
            raise RecordError(f"{path}: utterance {dup.iloc[0]} appears twice")
        for col in ("pred", "label"):
            v = pd.to_numeric(f[col], errors="coerce").astype("float64")
            bad = ~v.map(math.isfinite)
            if bad.any():
                i = int(bad.to_numpy().nonzero()[0][0])
                raise RecordError(f"{path}: {col} of {f['id'].iloc[i]} is not a finite number ({f[col].iloc[i]!r})")
            f[col] = v
        return f.set_index("id")[["pred", "label"]].sort_index()

    @cached_property
    def digests(self) -> dict[str, str] | None:
        """File name -> sha256 from digests.json; None for a record made before digests were written."""
        if not (self.dir / DIGESTS).is_file():
            return None
        table = read_json(self.dir / DIGESTS).get("sha256")
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise RecordError(f"{self.dir / DIGESTS}: expected {{\"sha256\": {{file: hex digest}}}}")
        return table

    def check_digests(self) -> None:
        """A one-line RecordError unless every record file has the sha256 digests.json gives it (and model.pt too
        where it is still there); a record without digests.json passes (its predictions are checked instead)."""
        if self.digests is None:
            return
        missing = [f for f in RECORD_FILES if f not in self.digests]
        if missing:
            raise RecordError(f"{self.dir / DIGESTS}: no digest of {', '.join(missing)}")
        for name, want in sorted(self.digests.items()):
            path = self.dir / name
            if name not in (*RECORD_FILES, MODEL):
                raise RecordError(f"{self.dir / DIGESTS}: names {name!r}, which is not a file of a record")
            if not path.is_file():
                if name == MODEL:
                    continue  # the weights may be removed (they are large and not committed); never changed
                raise RecordError(f"{path}: missing, though digests.json lists it")
            if sha256(path.read_bytes()) != want:
                raise RecordError(f"{path}: its sha256 differs from digests.json (the file was changed)")


@dataclass(frozen=True)
class Predictions:
    """One experiment's test predictions stacked: ``preds`` (S, N), one row per seed (or, for a cross-validated
    experiment, per pooled repeat, :mod:`miar.pooled`), columns in the order of ``ids`` (sorted); ``labels`` (N,)."""

    experiment: str
    ids: tuple[str, ...]
    preds: np.ndarray  # (S, N)
    labels: np.ndarray  # (N,)
    left_out: int = 0  # complete runs without a usable predictions.csv
    note: str = ""  # e.g. the repeats of a cross-validated experiment left out
    repeats: tuple[int, ...] = ()  # pooled only: the repeat of each row
    seeds: tuple[tuple[int, ...], ...] = ()  # pooled only: the seeds of each repeat's fold runs
    wall_time_s: tuple[float, ...] = ()  # pooled only: per repeat, summed over its folds
    incomplete: dict[int, str] = field(default_factory=dict)  # pooled only: repeat -> why it was left out
    pairing: tuple[int, ...] = ()  # the key pairing each row with the other side's: its seed (pooled: its repeat)


__all__ = ["CHECKPOINT", "Predictions", "DIGESTS", "RECORD_FILES", "RecordError", "RunRecord", "atomic_write", "check_writable",
           "cpu_model", "csv_text", "environment", "git_commit", "is_complete", "read_json", "read_yaml",
           "simd_level", "stage", "write_record"]
