"""The notebooks' parameters, checked strictly: papermill only warns about unknown parameters, so each
notebook snapshots its globals before the parameters cell and calls :func:`check_parameters` after it.
This is all a notebook imports from the runner wing."""

from __future__ import annotations

from miar.config import ConfigError


def check_parameters(before: dict, namespace: dict, allowed: dict[str, type]) -> dict:
    """The notebook's parameters, checked strictly.

    ``before`` is ``dict(globals())`` taken just before the parameters cell, ``namespace`` is ``globals()``
    now. Any public name that is new or rebound and not in ``allowed`` (name -> type) was injected by
    papermill without being a parameter: raise :class:`ConfigError`. Names starting with ``_`` (IPython's
    history variables) are ignored.
    """
    unknown = sorted(k for k, v in namespace.items() if not k.startswith("_") and k not in allowed
                     and (k not in before or before[k] is not v))
    if unknown:
        raise ConfigError(f"unknown notebook parameter(s) {unknown} (allowed: {sorted(allowed)})")
    params = {}
    for k, tp in allowed.items():
        if k not in namespace:
            raise ConfigError(f"notebook parameter {k!r} is not defined")
        v = namespace[k]
        if not isinstance(v, tp) or (tp is int and isinstance(v, bool)):
            raise ConfigError(f"notebook parameter {k}: expected {tp.__name__}, got {v!r}")
        params[k] = v
    return params
