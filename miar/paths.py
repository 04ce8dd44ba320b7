"""Paths built from user input stay inside their root.

Experiment names, variants, run names and a config's ``name`` become directory names (``runs/<name>-s<seed>``,
``DIR/runs/<experiment>/s<seed>``, ``DIR/notebooks/<experiment>/s<seed>.ipynb``). :func:`component` accepts
one plain path component (letters, digits, ``_ . + = -``, not starting with a dot, at most 200 characters);
:func:`inside` joins components under a root and checks that the resolved path is still below the resolved
root (a symbolic link pointing out is refused too). Both raise :class:`UnsafePath`, a one-line
:class:`~miar.config.ConfigError`, before any file is touched.
"""

from __future__ import annotations

import re
from pathlib import Path

from miar.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_+=-][A-Za-z0-9_.+=-]{0,199}$")


class UnsafePath(ConfigError):
    """A name that would put a path outside its root (or is no plain directory name)."""


def component(value, what: str) -> str:
    """``value`` if it is one plain path component, else :class:`UnsafePath` naming ``what``."""
    if not isinstance(value, str) or not NAME.match(value):
        raise UnsafePath(f"{what}: {value!r} is not a plain name (letters, digits, '_.+=-', not starting "
                         f"with '.', at most 200 characters; no '/' or '..')")
    return value


def inside(root: str | Path, *parts: str, what: str = "path") -> Path:
    """``root / parts...`` after checking each part with :func:`component` and that the resolved result
    lies below the resolved ``root``."""
    root = Path(root)
    for p in parts:
        component(p, what)
    path = root.joinpath(*parts)
    base, full = root.resolve(), path.resolve()
    if full != base and base not in full.parents:
        raise UnsafePath(f"{what}: {path} resolves to {full}, outside {base}")
    return path


__all__ = ["NAME", "UnsafePath", "component", "inside"]
