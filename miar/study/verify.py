"""A record proves itself before ``miar collect`` counts it.

:func:`verify` reads every record through :class:`miar.records.RunRecord` and refuses, with one line naming the
record and the problem (:class:`CollectError`), any record that:

- has a ``digests.json`` that a file no longer matches (records made before digests were written have none and
  are checked by their predictions alone);
- has predictions that are not one finite number per unique utterance id, or labels that differ from the
  dataset's label for that id (records of ``data.source: mosi`` where the CMU-MOSI files can be read here), or,
  for every source, from another seed's label for the same id;
- has test metrics in ``metrics.json`` that are not finite, fall outside their range (:data:`RANGES`), or differ
  by more than :data:`TOLERANCE` from the metrics recomputed from its ``predictions.csv``; validation metrics
  must be finite and in range too;
- predicts exactly what another run of the same experiment predicts (a copy with its seed edited);
- has an executed notebook whose parameters do not resolve to its config, or has neither a notebook nor digests
  (then nothing shows that its config is the one that ran).

Tolerance: ``predictions.csv`` rounds each prediction to 6 decimals (an error of at most e = 5e-7 each), so a
recomputed MAE moves by at most e; 1e-6 holds. Pearson r moves by at most about e (1 + |r|) / sd(predictions)
(its gradient in one prediction is (z_y - r z_p) / (N sd_p)): 1e-6 on the committed runs, whose predictions
spread widely, but more for a briefly trained model whose predictions barely differ, so r's tolerance is the
larger of 1e-6 and twice that bound (:func:`tolerances`). The counting metrics (accuracies, F1) move only when
a prediction lies within 5e-7 of a class boundary, which changes a count by one: that would be refused too, and
none of the committed records does so (checked when this was written).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import yaml

from miar import config as C
from miar.errors import UserError
from miar.metrics import METRICS
from miar.records import RecordError, RunRecord

TOLERANCE = 1e-6  # |metrics.json - recomputed from predictions.csv|, every test metric
LABEL_TOLERANCE = 1e-6  # labels are float32 copies of the dataset's float64 scores
RANGES = {m: (0.0, 1.0) for m in METRICS} | {"mae": (0.0, math.inf), "corr": (-1.0, 1.0)}


class CollectError(UserError, ValueError):
    """Results that do not agree with their notebooks or predictions, or no results at all."""


class DatasetLabels:
    """The dataset's label of every utterance, for records of the real CMU-MOSI data (``data.source: mosi``);
    None where that cannot be read here (the data is not on this machine) and for other sources (an MMSA
    pickle, generated synthetic data), whose labels are checked across seeds instead. Read once per data root."""

    def __init__(self):
        self._cache: dict[str, dict[str, float] | None] = {}
        self.read = 0  # how many records were checked against their dataset

    def __call__(self, config: dict) -> dict[str, float] | None:
        from miar.data import DataError, data_root  # lazy: collect without data stays light
        from miar.data.mosi_files import read_mosi

        data = config.get("data")
        if not isinstance(data, dict) or data.get("source") != "mosi" or not isinstance(data.get("path"), (str, type(None))):
            return None
        root = str(data_root(data.get("path")))
        if root not in self._cache:
            try:
                table = read_mosi(root)
                self._cache[root] = dict(zip(table.ids, map(float, table.y)))
            except (DataError, OSError, ValueError):
                self._cache[root] = None
        self.read += self._cache[root] is not None
        return self._cache[root]


def tolerances(pred, recomputed: dict) -> dict[str, float]:
    """Per metric, how far the recomputation may lie from metrics.json (the module docstring's bounds)."""
    import numpy as np
    sd = float(np.std(np.asarray(pred, dtype=np.float64)))
    r = abs(recomputed.get("corr", 0.0)) if math.isfinite(recomputed.get("corr", math.nan)) else 1.0
    corr = max(TOLERANCE, 2 * 5e-7 * (1 + r) / sd) if sd > 0 else TOLERANCE
    return {m: corr if m == "corr" else TOLERANCE for m in METRICS}


def check_block(where: Path, name: str, block: dict, recomputed: dict | None = None,
                tol: dict[str, float] | None = None) -> float:
    """Every metric of ``block`` finite, in range and (with ``recomputed``) within its tolerance (``tol``, default
    TOLERANCE) of it; returns the largest discrepancy. A metric that cannot be defined (non-zero accuracy when every label is 0) may be
    null or NaN only where the recomputation is NaN too."""
    worst = 0.0
    for m in (m for m in METRICS if m in block):  # the test block has all (miar.study.integrity)
        v = block[m]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise RecordError(f"{where}: {name} {m} is {v!r}, not a number")
        value = math.nan if v is None else float(v)
        if recomputed is not None and math.isnan(recomputed[m]) and math.isnan(value):
            continue
        lo, hi = RANGES[m]
        if not (math.isfinite(value) and lo <= value <= hi):
            raise RecordError(f"{where}: {name} {m} is {v!r}, not a finite number in [{lo}, {hi}]")
        if recomputed is not None:
            gap, allowed = abs(value - recomputed[m]), (tol or {}).get(m, TOLERANCE)
            if not gap <= allowed:
                raise RecordError(f"{where}: {name} {m} is {value!r}, but its predictions.csv gives "
                                  f"{recomputed[m]!r} (differs by {gap:.2g}; allowed {allowed:.2g})")
            worst = max(worst, gap)
    return worst


def check_labels(rec: RunRecord, expected: dict[str, float]) -> None:
    """Every id of the record's predictions is an utterance of its dataset, with the dataset's label."""
    where = rec.dir / "predictions.csv"
    for i, label in rec.predictions["label"].items():
        if i not in expected:
            raise RecordError(f"{where}: utterance {i} is not in the record's dataset")
        if not abs(label - expected[i]) <= LABEL_TOLERANCE:
            raise RecordError(f"{where}: label of {i} is {label!r}, the dataset says {expected[i]!r}")


def verify_record(rec: RunRecord, labels: DatasetLabels) -> float:
    """Raise a one-line RecordError unless ``rec`` proves itself (module docstring); returns the largest
    difference between its test metrics and those recomputed from its predictions."""
    from miar.metrics import compute_all  # lazy: sklearn

    rec.check_digests()
    where = rec.dir / "metrics.json"
    valid = rec.metrics.get("valid")
    if isinstance(valid, dict):
        check_block(where, "valid", valid)
    if not rec.evaluated:
        return 0.0
    pred = rec.predictions
    expected = labels(rec.config)
    if expected is not None:
        check_labels(rec, expected)
    recomputed = compute_all(pred["pred"].to_numpy(), pred["label"].to_numpy())
    return check_block(where, "test", rec.metrics["test"], recomputed, tolerances(pred["pred"].to_numpy(), recomputed))


def check_seeds(records: list[RunRecord]) -> None:
    """Across the runs of each experiment: one label per utterance, and no two runs with the same predictions."""
    by_experiment: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.evaluated:
            by_experiment.setdefault(r.experiment, []).append(r)
    for runs in by_experiment.values():
        first: dict[str, tuple[float, RunRecord]] = {}
        seen: dict[bytes, RunRecord] = {}
        for r in runs:
            for i, label in r.predictions["label"].items():
                if first.setdefault(i, (label, r))[0] != label:
                    raise RecordError(f"{r.dir / 'predictions.csv'}: label of {i} is {label!r}, but "
                                      f"{first[i][1].dir} has {first[i][0]!r}")
            key = np.ascontiguousarray(r.predictions.reset_index()[["id", "pred"]].to_numpy(str)).tobytes()
            if key in seen:
                raise RecordError(f"{r.dir}: predicts exactly what {seen[key].dir} predicts: a copy of that run, "
                                  "not another seed")
            seen[key] = r


def _first_difference(a: dict, b: dict, prefix: str = "") -> str:
    for k in list(dict.fromkeys([*a, *b])):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            d = _first_difference(va, vb, f"{prefix}{k}.")
            if d:
                return d
        elif va != vb:
            return f"{prefix}{k}: notebook {va!r} vs record {vb!r}"
    return ""


def cross_check(notebook: Path, run_dir: Path) -> None:
    """Raise CollectError unless ``notebook``'s parameters resolve to ``run_dir``'s config.yaml."""
    try:
        meta = json.loads(Path(notebook).read_text()).get("metadata", {})
    except (OSError, ValueError) as e:
        raise CollectError(f"{notebook}: cannot read the notebook ({e})") from None
    params = meta.get("papermill", {}).get("parameters")
    if not isinstance(params, dict) or "experiment" not in params:
        raise CollectError(f"{notebook}: no papermill parameters in its metadata")
    tail = Path(str(params.get("run_dir", ""))).parts[-2:]
    if tuple(tail) != (run_dir.parent.name, run_dir.name):
        raise CollectError(f"{notebook}: its run_dir {params.get('run_dir')!r} is not "
                           f"runs/{run_dir.parent.name}/{run_dir.name}")
    try:
        with warnings.catch_warnings():  # a committed notebook may spell a value the old way (token_scheme h1-h3)
            warnings.simplefilter("ignore", FutureWarning)
            cfg = C.load(params["experiment"], overrides=params.get("overrides") or [], seed=params.get("seed"))
    except C.ConfigError as e:
        raise CollectError(f"{notebook}: its parameters no longer resolve ({e})") from None
    record = (run_dir / "config.yaml").read_text()
    if C.identity(C.dump(cfg)) != C.identity(record):
        diff = _first_difference(C.to_dict(cfg), yaml.safe_load(record) or {}) or "text differs"
        raise CollectError(f"{notebook}: its parameters resolve to a config that differs from "
                           f"{run_dir / 'config.yaml'} ({diff})")


def verify(results: Path, run_dirs: list[Path], labels: DatasetLabels | None = None) -> tuple[list[RunRecord], float]:
    """Every record of ``run_dirs`` checked (module docstring), or CollectError on the first that fails;
    returns the records and the largest metric discrepancy met."""
    from miar.study.integrity import check_record

    labels, records, worst = labels or DatasetLabels(), [], 0.0
    for run_dir in run_dirs:
        rec = RunRecord(run_dir)
        nb = Path(results) / "notebooks" / rec.experiment / f"{rec.run}.ipynb"
        try:  # whole, sane, and the run its directory names (miar.study.integrity); its config the notebook's
            check_record(run_dir)
            if nb.is_file():  # before the digests: this names the key that changed
                cross_check(nb, run_dir)
            elif rec.digests is None:
                raise RecordError(f"{run_dir}: no executed notebook ({nb}) and no digests.json: nothing shows "
                                  "that its config is the one that ran")
            worst = max(worst, verify_record(rec, labels))
        except RecordError as e:
            raise CollectError(f"{e}; move the record away or redo the run") from None
        records.append(rec)
    try:
        check_seeds(records)
    except RecordError as e:
        raise CollectError(f"{e}; move the record away or redo the run") from None
    return records, worst


__all__ = ["CollectError", "DatasetLabels", "RANGES", "TOLERANCE", "check_block", "cross_check", "verify",
           "verify_record"]
