"""The study's declared comparisons (``miar/experiments/comparisons.yaml``: families of [A, B] pairs, each
family's optional Holm set) and test settings (``miar/experiments/margins.yaml``: the level, power,
resampling and the margin of every metric), read and checked; :mod:`miar.comparisons` computes them.

A family is ``{what: str, pairs: [[A, B], ...], holm: str, deciding: [A, B]}`` with ``holm`` and ``deciding``
optional: families that name the same Holm set are corrected together (a claim that spans two families), a
family without one is its own set; ``deciding`` names the pair that decides the family's claim (it may choose
its B by validation MAE, ``{choose: [...]}``), the others being reported beside it.
Every problem with either file is a one-line :class:`ComparisonError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from miar.errors import ConfigError, UserError
from miar.metrics import METRICS
from miar.strict import load_yaml

SETTINGS_KEYS = {"alpha", "power", "resamples", "seed", "margins"}
FAMILY_KEYS = {"what", "pairs"}  # required; "holm" (a Holm set's name) and "deciding" (a pair) are optional
OPTIONAL_FAMILY_KEYS = {"holm", "deciding"}


class ComparisonError(UserError, ValueError):
    """A comparisons or margins file that cannot be used, or two experiments on different test sets."""


def _yaml(name: str | Path) -> dict:
    path = Path(name) if isinstance(name, Path) else resources.files("miar") / "experiments" / name
    try:
        data = load_yaml(path.read_text(), str(path))  # nested too deep: one line, not RecursionError
    except OSError as e:
        raise ComparisonError(f"{path}: cannot read ({str(e).splitlines()[0]})") from None
    except ConfigError as e:  # "<path>: cannot read YAML (...)" or "<path>: nested deeper than ..."
        raise ComparisonError(str(e)) from None
    if not isinstance(data, dict):
        raise ComparisonError(f"{path}: expected a mapping at the top level")
    return data


@dataclass(frozen=True)
class Settings:
    """margins.yaml: the test level, the power target, resampling and the margin of every metric."""

    alpha: float
    power: float
    resamples: int
    seed: int
    margins: dict[str, float]
    why: dict[str, str]


def load_settings(path: str | Path = "margins.yaml") -> Settings:
    """Read and check margins.yaml (unknown keys, a missing metric or a bad value: one-line error)."""
    data = _yaml(path)
    unknown = set(data) - SETTINGS_KEYS
    if unknown or SETTINGS_KEYS - set(data):
        raise ComparisonError(f"{path}: keys must be {sorted(SETTINGS_KEYS)}, got {sorted(data)}")
    m = data["margins"]
    if not isinstance(m, dict) or set(m) != set(METRICS):
        raise ComparisonError(f"{path}: margins must give exactly the metrics {list(METRICS)}")
    margins = {k: v.get("value") if isinstance(v, dict) else v for k, v in m.items()}
    why = {k: v.get("why", "") if isinstance(v, dict) else "" for k, v in m.items()}
    bad = [k for k, v in margins.items() if not isinstance(v, (int, float)) or not v > 0]
    ok = 0 < data["alpha"] < 1 and 0 < data["power"] < 1 and int(data["resamples"]) >= 100
    if bad or not ok:
        raise ComparisonError(f"{path}: need 0 < alpha, power < 1, resamples >= 100 and positive margins"
                              + (f" (bad: {', '.join(bad)})" if bad else ""))
    return Settings(float(data["alpha"]), float(data["power"]), int(data["resamples"]), int(data["seed"]),
                    {k: float(v) for k, v in margins.items()}, why)


def load_families(path: str | Path = "comparisons.yaml") -> dict[str, dict]:
    """Read and check comparisons.yaml: family -> {"what": str, "pairs": [[A, B], ...], optional "holm": str}."""
    data = _yaml(path)
    fams = data.get("families")
    if set(data) != {"families"} or not isinstance(fams, dict) or not fams:
        raise ComparisonError(f"{path}: expected one key 'families' holding a mapping")
    for name, fam in fams.items():
        if (not isinstance(fam, dict) or not FAMILY_KEYS <= set(fam) <= FAMILY_KEYS | OPTIONAL_FAMILY_KEYS
                or not isinstance(fam["pairs"], list) or not isinstance(fam.get("holm", ""), str)):
            raise ComparisonError(f"{path}: family {name!r} needs exactly 'what' and 'pairs' (and optionally "
                                  "'holm', the name of its Holm set, and 'deciding', its deciding pair)")
        for pair in fam["pairs"] + ([fam["deciding"]] if "deciding" in fam else []):
            if not (isinstance(pair, list) and len(pair) == 2 and all(map(_entry_ok, pair))):
                raise ComparisonError(f"{path}: family {name!r}: {pair!r} is not [A, B] of names or "
                                      "{choose: [names]}")
    return fams


def _entry_ok(e) -> bool:
    return isinstance(e, str) or (isinstance(e, dict) and set(e) == {"choose"} and isinstance(e["choose"], list)
                                  and all(isinstance(n, str) for n in e["choose"]) and bool(e["choose"]))
