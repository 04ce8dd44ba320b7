"""Search spaces for ``miar tune``: YAML files beside the experiments, validated as strictly as configs.

A space (``miar/experiments/spaces/<name>.yaml``, or any path) names dotted config keys and their ranges::

    description: what is searched        # optional
    params:
      train.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
      model.n_layers: {type: int, low: 1, high: 3}
      data.batch_size: {type: categorical, choices: [16, 32, 64]}

Every key must be a config key, every bound and choice a value the config accepts (each is resolved through
:func:`miar.config.load` with the experiment; a constraint between two searched keys, such as width and heads,
is left to each trial, which fails if its combination is invalid), ``low < high``, ``log`` only with ``low > 0``; an unknown key or
field, or a bad range, is a one-line :class:`~miar.errors.ConfigError` naming the file. The default space of
an experiment is ``spaces/<experiment>.yaml``, else ``spaces/<its model.name>.yaml``.

An enqueue file (``miar tune --enqueue``) lists known configurations to try first, each a mapping from space
keys to values (``trials: [{train.lr: 2.0e-3, ...}, ...]``); values outside the space are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from miar import config as C
from miar.declared import SPACES_DIR
from miar.errors import ConfigError

_TOP = {"description", "params"}
_FIELDS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
           "categorical": {"type", "choices"}}


@dataclass(frozen=True)
class Param:
    key: str  # dotted config key
    kind: str  # float, int, categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def distribution(self):
        """The Optuna distribution of this parameter."""
        import optuna.distributions as d  # lazy: the notebooks extra

        if self.kind == "categorical":
            return d.CategoricalDistribution(list(self.choices))
        cls = d.FloatDistribution if self.kind == "float" else d.IntDistribution
        return cls(self.low, self.high, log=self.log, **({} if self.step is None else {"step": self.step}))

    def values(self) -> list:
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]


def space_path(experiment: str, space: str | None = None) -> Path:
    """``space`` (a path or a name in ``spaces/``), else the experiment's default space."""
    if space is not None:
        p = Path(space) if Path(space).suffix in (".yaml", ".yml") else SPACES_DIR / f"{space}.yaml"
        if not p.is_file():
            raise ConfigError(f"{p}: no such search space")
        return p
    for name in (Path(experiment).stem, C.load(experiment).model.name):
        if (SPACES_DIR / f"{name}.yaml").is_file():
            return SPACES_DIR / f"{name}.yaml"
    raise ConfigError(f"no search space for {experiment} in {SPACES_DIR} (pass --space FILE)")


def _number(v, kind: str, where: str):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (kind == "float" or isinstance(v, int))
    if not ok:
        raise ConfigError(f"{where}: expected {'a number' if kind == 'float' else 'an integer'}, got {v!r}")
    return float(v) if kind == "float" else v


def _param(key: str, spec, where: str) -> Param:
    if not isinstance(spec, dict) or spec.get("type") not in _FIELDS:
        raise ConfigError(f"{where}: expected a mapping with type float, int or categorical, got {spec!r}")
    kind = spec["type"]
    unknown = set(spec) - _FIELDS[kind]
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)} (valid: {sorted(_FIELDS[kind])})")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices or len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}: choices must be a non-empty list of distinct values")
        return Param(key, kind, choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: needs low and high")
    low, high = _number(spec["low"], kind, f"{where}.low"), _number(spec["high"], kind, f"{where}.high")
    log, step = spec.get("log", False), spec.get("step")
    if not low < high:
        raise ConfigError(f"{where}: low ({low}) must be below high ({high})")
    if not isinstance(log, bool) or (log and low <= 0) or (log and step is not None):
        raise ConfigError(f"{where}: log must be true or false, needs low > 0 and no step")
    if step is not None and _number(step, kind, f"{where}.step") <= 0:
        raise ConfigError(f"{where}: step must be positive")
    return Param(key, kind, low, high, log, step)


def load_space(path: Path, experiment: str) -> tuple[Param, ...]:
    """The space's parameters, each checked against ``experiment``'s config (see the module docstring)."""
    data = C._read_yaml(Path(path))
    unknown = set(data) - _TOP
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)} (valid: {sorted(_TOP)})")
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{path}: 'params' must be a non-empty mapping of config keys to ranges")
    out = tuple(_param(str(k), v, f"{path}: params.{k}") for k, v in params.items())
    keys = {p.key for p in out}
    for p in out:
        for v in p.values():
            try:
                C.load(experiment, overrides=_nested(p.key, v))
            except ConfigError as e:  # a constraint between two searched keys is checked per trial instead
                if not any(k in str(e) for k in keys - {p.key}):
                    raise ConfigError(f"{path}: params.{p.key}: {e}") from None
    return out


def _nested(key: str, value) -> dict:
    out: dict = {}
    cur = out
    *parents, last = key.split(".")
    for part in parents:
        cur = cur.setdefault(part, {})
    cur[last] = value
    return out


def load_enqueue(path: Path, space: tuple[Param, ...]) -> list[dict]:
    """The known configurations of an enqueue file, each checked against ``space``."""
    data = C._read_yaml(Path(path))
    if set(data) - {"description", "trials"} or not isinstance(data.get("trials"), list) or not data["trials"]:
        raise ConfigError(f"{path}: expected 'trials: [ {{key: value, ...}}, ... ]' (and an optional description)")
    by_key = {p.key: p for p in space}
    for i, trial in enumerate(data["trials"]):
        if not isinstance(trial, dict) or not trial:
            raise ConfigError(f"{path}: trials[{i}]: expected a mapping of space keys to values")
        for k, v in trial.items():
            p = by_key.get(k)
            if p is None:
                raise ConfigError(f"{path}: trials[{i}]: {k} is not in the search space ({', '.join(by_key)})")
            if not p.distribution()._contains(p.distribution().to_internal_repr(v)):
                raise ConfigError(f"{path}: trials[{i}]: {k}={v!r} lies outside the search space")
    return data["trials"]


__all__ = ["Param", "SPACES_DIR", "load_enqueue", "load_space", "space_path"]
