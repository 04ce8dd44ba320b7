"""The package's user-error types and one line for an operating-system error: the file (or files) and the
problem, never a traceback. It imports nothing of ``miar``, so every module can raise these."""

from __future__ import annotations

import errno


class ConfigError(ValueError):
    """An unknown experiment, unknown key or a value of the wrong type (re-exported by :mod:`miar.config`)."""


def os_error_line(e: OSError) -> str:
    """``"<file>: <problem>"`` for ``e`` (``PermissionError``, ``ENOSPC``, ``EROFS``, ...)."""
    what = e.strerror or (errno.errorcode.get(e.errno, "") if e.errno else "") or str(e) or type(e).__name__
    names = [str(n) for n in (e.filename, e.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else what


__all__ = ["ConfigError", "os_error_line"]
