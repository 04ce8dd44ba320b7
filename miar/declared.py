"""What the study declares it runs, read without running anything: the sweeps (``miar/experiments/sweeps/``),
the search spaces' folder, the models and their tuning studies, and the choices ``miar tune --report`` wrote
(``results/tune/<study>-best.yaml``).

It sits below both wings: the runner (:mod:`miar.study`) resolves these declarations into runs and executes
them, the report (:mod:`miar.report`) reads them to know what was planned, and neither imports the other for
that. Nothing here resolves a configuration (that is :func:`miar.study.plan.load_sweep`): these readers are
cheap, for reports and dry listings. A malformed file is a one-line :class:`~miar.errors.ConfigError`.
"""

from __future__ import annotations

import re
from pathlib import Path

from miar import config as C
from miar.paths import component

SWEEPS_DIR = C.EXPERIMENTS_DIR / "sweeps"  # the study's sweeps, one YAML file each
SPACES_DIR = C.EXPERIMENTS_DIR / "spaces"  # miar tune's search spaces, one YAML file per model or experiment
TUNED_DIR = "results/tune"  # where a sweep entry's `tuned: STUDY` reads STUDY-best.yaml (a sweep may say otherwise)
VARIANT = re.compile(r"^[A-Za-z0-9_.-]+$")  # a sweep entry's variant: one path component, no separators

MODEL_NAMES = ("miar", "text_only", "early_fusion", "late_fusion", "bclstm", "mult", "misa")  # the compared models
TUNING = {m: f"mosi_std_{m}" for m in MODEL_NAMES}  # model -> its tuning study (results/tune/<study>.db)
STUDY_SWEEPS = ("primary", "ablations", "synthetic", "legacy", "textgen")  # the redesigned study (make study), after tuning
RESUMED_SWEEPS = ("primary_ft", "cv")  # sweeps too long for one session: their time is the sum of their invocations


def list_sweeps() -> list[str]:
    """The names of the sweeps in ``miar/experiments/sweeps/``."""
    return sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))


def sweep_path(name: str) -> Path:
    """A sweep name in ``miar/experiments/sweeps/`` or a path to a YAML file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise C.ConfigError(f"{p}: no such sweep file")
        return p
    p = SWEEPS_DIR / f"{name}.yaml"
    if not p.is_file():
        known = ", ".join(list_sweeps())
        raise C.ConfigError(f"unknown sweep '{name}' (known: {known})")
    return p


def sweep_seeds(value, where: str) -> list[int]:
    """A sweep's (or an entry's) ``seeds``: a non-empty list of integers."""
    if not isinstance(value, list) or not value or not all(type(s) is int for s in value):
        raise C.ConfigError(f"{where}: seeds must be a non-empty list of integers, got {value!r}")
    return value


def run_display(exp: str, variant, where: str) -> str:
    """The directory name of an entry's runs: the experiment (a YAML path's stem) and ``+variant``."""
    display = component(Path(exp).stem if Path(exp).suffix in (".yaml", ".yml") else exp, f"{where}: experiment")
    if variant is None:
        return display
    if not isinstance(variant, str) or not VARIANT.match(variant):
        raise C.ConfigError(f"{where}: variant must match {VARIANT.pattern}, got {variant!r}")
    return f"{display}+{variant}"


def sweep_experiments(name: str) -> list[str]:
    """The experiments (run directory names) a sweep names, in order, without resolving any configuration."""
    path = sweep_path(name)
    return list(dict.fromkeys(run_display(str(e["experiment"]), e.get("variant"), f"{path}: runs[{i}]")
                              for i, e in enumerate(C._read_yaml(path).get("runs") or [])))


def sweep_runs(name: str) -> set[tuple[str, int]]:
    """The (experiment, seed) pairs a sweep names, without resolving any configuration (cheap: for reports)."""
    path = sweep_path(name)
    data = C._read_yaml(path)
    default = sweep_seeds(data.get("seeds", [1111]), f"{path}")
    return {(run_display(str(e["experiment"]), e.get("variant"), f"{path}: runs[{i}]"), s)
            for i, e in enumerate(data.get("runs") or [])
            for s in (sweep_seeds(e["seeds"], f"{path}: runs[{i}]") if "seeds" in e else default)}


def tuned_overrides(study: str, tuned_dir: str | Path = TUNED_DIR, where: str = "") -> list[str]:
    """The overrides of the trial ``miar tune STUDY --report`` chose (``<tuned_dir>/STUDY-best.yaml``)."""
    name = component(study, f"{where}: tuned" if where else "tuned")
    path = Path(tuned_dir) / f"{name}-best.yaml"
    if not path.is_file():
        raise C.ConfigError(f"{path}: no such file (run the tuning first: miar tune {name} ..., then "
                            f"miar tune {name} --report)")
    data = C._read_yaml(path)
    ov = data.get("overrides")
    if not isinstance(ov, list) or not all(isinstance(o, str) for o in ov):
        raise C.ConfigError(f"{path}: 'overrides' must be a list of 'key=value' strings")
    return list(ov)


def search_seeds(results: str | Path, study: str) -> set[str] | None:
    """The seeds the search itself ran (``<study>-best.yaml``), as run directory names; None when unknown."""
    import yaml

    p = Path(results) / "tune" / f"{study}-best.yaml"
    try:
        return {f"s{s}" for s in yaml.safe_load(p.read_text())["seeds"]}
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None
