"""Restricted unpickling for feature pickles of unknown origin.

A pickle can name any importable callable and call it while loading (``os.system`` included).
The MMSA and MulT feature files need only builtin containers and scalars, ``collections``
dicts and numpy's array/dtype/scalar reconstruction, so :func:`safe_load` resolves exactly
those globals and refuses every other one with :class:`UnsafePickleError`.
``encoding="latin1"`` lets Python-2 era pickles (numpy buffers stored as ``str``) load.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

from miar.data.batch import DataError


class UnsafePickleError(DataError):
    """A pickle asked for a global outside the allow-list (it could run code on load)."""


_BUILTIN_NAMES = ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
                  "int", "float", "complex", "bool")
_NUMPY_CORE = ("numpy.core", "numpy._core")  # numpy < 2 and numpy >= 2 spell the package differently


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``; text codecs only."""
    if codecs.lookup(encoding).name not in ("latin-1", "iso8859-1", "utf-8", "ascii"):
        raise pickle.UnpicklingError(f"codec {encoding!r} not allowed")
    return codecs.encode(obj, encoding, errors)


def _numpy_core(module: str, name: str) -> Any:
    """The numpy object behind ``numpy._core.<module>.<name>`` without the deprecated alias."""
    core = getattr(np, "_core", None)
    if core is None:  # numpy < 2
        import numpy.core as core  # type: ignore[no-redef]
    return getattr(getattr(core, module), name)


def _allowed() -> dict[tuple[str, str], Callable[[], Any]]:
    """(module, name) -> resolver of every global the supported formats may reference."""
    table: dict[tuple[str, str], Callable[[], Any]] = {}
    for mod in ("builtins", "__builtin__"):
        for name in _BUILTIN_NAMES:
            table[(mod, name)] = lambda name=name: getattr(builtins, name)
    table[("collections", "OrderedDict")] = lambda: collections.OrderedDict
    table[("collections", "defaultdict")] = lambda: collections.defaultdict
    table[("_codecs", "encode")] = lambda: _latin1_encode
    table[("numpy", "ndarray")] = lambda: np.ndarray
    table[("numpy", "dtype")] = lambda: np.dtype
    for pkg in _NUMPY_CORE:
        for mod, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                          ("numeric", "_frombuffer")):
            table[(f"{pkg}.{mod}", name)] = lambda mod=mod, name=name: _numpy_core(mod, name)
    return table


_ALLOWED = _allowed()


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` only resolves the allow-list above."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        resolve = _ALLOWED.get((module, name))
        if resolve is None:
            raise UnsafePickleError(
                f"{self.source}: refused to unpickle '{module}.{name}' (not a numpy/builtin type)")
        return resolve()


def safe_load(path: str | Path) -> object:
    """Load the pickle at ``path`` allowing only numpy/builtin types.

    Raises :class:`UnsafePickleError` for any other global and :class:`DataError` for a
    missing, empty, truncated or otherwise unreadable file.
    """
    source = str(path)
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise DataError(f"{source}: cannot open ({e.strerror or e})") from None
    with fh:
        try:
            return _RestrictedUnpickler(fh, source).load()
        except UnsafePickleError:
            raise
        except Exception as e:  # EOFError, UnpicklingError, ValueError, ... from corrupt bytes
            detail = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            raise DataError(f"{source}: not a readable pickle ({detail})") from None
