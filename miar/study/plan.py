"""A sweep file resolved into runs, and the state of each run in a results directory.

A sweep is a YAML file in ``miar/experiments/sweeps/`` (or any path)::

    notebook: train.ipynb          # in the packaged notebooks (or a path)
    seeds: [1111, 1112]            # default seeds of every entry
    order: seed                    # optional: "entry" (default: each entry's seeds in turn) or "seed" (every
                                   # entry's first seed, then every entry's second, ...: a sweep stopped part
                                   # way leaves its experiments with equal numbers of seeds)
    runs:
      - experiment: smoke          # an experiment name or a YAML path
      - experiment: smoke
        variant: no_contrastive    # shown as experiment "smoke+no_contrastive"
        overrides: [loss.weight=0]
        seeds: [1111]              # optional, replaces the default seeds
      - experiment: mosi_bclf_miar
        variant: tuned
        tuned: mosi_std_miar       # the values miar tune chose for that study, before the entry's overrides

``tuned: STUDY`` reads ``<tuned_dir>/STUDY-best.yaml`` (written by ``miar tune STUDY --report``; ``tuned_dir``
is a sweep-level key, default ``results/tune``, relative to the working directory): the chosen trial's values
become the first overrides, so an entry's own overrides (an ablation's delta) apply on top of them.
A variant's config gets ``name=<experiment>+<variant>`` as its first override, so the run record names
its experiment. Every config is resolved strictly before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from miar import config as C
from miar.declared import (  # noqa: F401 (re-exported: where the runner's callers look for them)
    SWEEPS_DIR,
    TUNED_DIR,
    list_sweeps,
    run_display,
    sweep_experiments,
    sweep_path,
    sweep_runs,
    sweep_seeds,
    tuned_overrides,
)
from miar.paths import inside
from miar.records import is_complete

_SWEEP_KEYS = {"notebook", "seeds", "runs", "description", "tuned_dir", "order"}
ORDERS = ("entry", "seed")
_ENTRY_KEYS = {"experiment", "variant", "overrides", "seeds", "tuned"}


def notebooks_dir() -> Path:
    """The parameterized notebooks shipped with the package (``miar/_notebooks``: in a checkout and an
    editable install a link to the top-level ``notebooks/``, in a wheel a copy)."""
    return Path(str(files("miar") / "_notebooks"))


@dataclass(frozen=True)
class Run:
    """One notebook execution of a sweep."""

    experiment: str  # as given to the notebook: a name or a YAML path
    display: str  # directory name under runs/ and notebooks/: experiment stem (+variant)
    seed: int
    overrides: tuple[str, ...]
    config_yaml: str  # the resolved config, as the run record will hold it

    @property
    def name(self) -> str:
        return f"s{self.seed}"

    @property
    def key(self) -> str:
        return f"{self.display}/{self.name}"

    def run_dir(self, results: Path) -> Path:
        return inside(Path(results) / "runs", self.display, self.name, what="run directory")

    def notebook_path(self, results: Path) -> Path:
        return inside(Path(results) / "notebooks", self.display, f"{self.name}.ipynb", what="notebook")


def _entry_runs(entry, default_seeds, where: str, extra: tuple[str, ...] = (),
                tuned_dir: str | Path = TUNED_DIR) -> list[Run]:
    if not isinstance(entry, dict) or "experiment" not in entry:
        raise C.ConfigError(f"{where}: each run needs an 'experiment' key, got {entry!r}")
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise C.ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (valid: {sorted(_ENTRY_KEYS)})")
    exp, variant = str(entry["experiment"]), entry.get("variant")
    overrides = entry.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise C.ConfigError(f"{where}: overrides must be a list of 'key=value' strings")
    if "tuned" in entry:
        if not isinstance(entry["tuned"], str):
            raise C.ConfigError(f"{where}: tuned must be a study name, got {entry['tuned']!r}")
        overrides = [*tuned_overrides(entry["tuned"], tuned_dir, where), *overrides]
    display = run_display(exp, variant, where)
    if variant is not None:
        overrides = [f"name={display}", *overrides]
    seeds = sweep_seeds(entry["seeds"], where) if "seeds" in entry else default_seeds
    overrides = [*overrides, *extra]  # `miar sweep --set`: after the entry's own, for every run
    runs = []
    for seed in seeds:
        try:
            cfg = C.load(exp, overrides=overrides, seed=seed)
        except C.ConfigError as e:
            raise C.ConfigError(f"{where} ({display}, seed {seed}): {e}") from None
        if cfg.name != display:  # a YAML path: the record is named after the directory it goes into
            overrides = [f"name={display}", *overrides]
            cfg = C.load(exp, overrides=overrides, seed=seed)
        runs.append(Run(exp, display, seed, tuple(overrides), C.dump(cfg)))
    return runs


def interleave(per_entry: list[list[Run]]) -> list[Run]:
    """Seed-major order: every entry's first run, then every entry's second, ... (entries keep their order)."""
    longest = max((len(rs) for rs in per_entry), default=0)
    return [rs[k] for k in range(longest) for rs in per_entry if k < len(rs)]


def load_sweep(name: str, overrides: tuple[str, ...] = ()) -> tuple[Path, list[Run]]:
    """The notebook and the runs of a sweep, every config resolved strictly; ``overrides`` (``--set``) are
    applied to every run after its entry's own (e.g. ``data.path=...``: the user's pickle)."""
    path = sweep_path(name)
    data = C._read_yaml(path)
    unknown = set(data) - _SWEEP_KEYS
    if unknown:
        raise C.ConfigError(f"{path}: unknown key(s) {sorted(unknown)} (valid: {sorted(_SWEEP_KEYS)})")
    nb = Path(data.get("notebook", "train.ipynb"))
    nb = nb if nb.is_absolute() or nb.parent != Path(".") else notebooks_dir() / nb
    if not nb.is_file():
        raise C.ConfigError(f"{path}: notebook {nb} not found")
    default_seeds = sweep_seeds(data.get("seeds", [1111]), f"{path}")
    entries = data.get("runs")
    if not isinstance(entries, list) or not entries:
        raise C.ConfigError(f"{path}: 'runs' must be a non-empty list")
    tuned_dir = data.get("tuned_dir", TUNED_DIR)
    if not isinstance(tuned_dir, str):
        raise C.ConfigError(f"{path}: tuned_dir must be a path, got {tuned_dir!r}")
    order = data.get("order", "entry")
    if order not in ORDERS:
        raise C.ConfigError(f"{path}: order must be one of {list(ORDERS)}, got {order!r}")
    per_entry = [_entry_runs(e, default_seeds, f"{path}: runs[{i}]", tuple(overrides), tuned_dir)
                 for i, e in enumerate(entries)]
    runs = interleave(per_entry) if order == "seed" else [r for rs in per_entry for r in rs]
    seen: set[str] = set()
    for r in runs:
        if r.key in seen:
            raise C.ConfigError(f"{path}: run {r.key} appears twice")
        seen.add(r.key)
    return nb, runs


def status(run: Run, results: Path) -> str:
    """``done`` (complete, same config), ``changed`` (complete, other config), ``incomplete`` or ``new``.

    Complete means every artefact is whole and sane (:mod:`miar.study.integrity`): the record (files,
    test block, predictions, identity) and the executed notebook; a record beside a truncated notebook is
    incomplete, so the run is redone."""
    from miar.study.integrity import notebook_problem, record_problem  # lazy: `miar list` stays light

    d = run.run_dir(results)
    if is_complete(d):
        try:
            same = C.identity((d / "config.yaml").read_text(encoding="utf-8")) == C.identity(run.config_yaml)
        except (OSError, UnicodeDecodeError):
            return "incomplete"
        if not same:
            return "changed"
        if record_problem(d) is None and notebook_problem(run.notebook_path(results)) is None:
            return "done"
    return "incomplete" if d.exists() else "new"
