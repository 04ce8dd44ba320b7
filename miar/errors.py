"""The package's user errors: one base, :class:`UserError`, that every error a user can fix derives from
(a bad config, argument, data file, record or declaration), so the command line catches it once and prints
one line, ``error: <message>``, with exit code 2. :func:`os_error_line` gives the same one line for an
operating-system error: the file (or files) and the problem, never a traceback. It imports nothing of
``miar``, so every module can raise these.

A new error type subclasses :class:`UserError` (and, where callers catch it so, the builtin it stands for:
``ValueError``, ``OSError``, ...); ``tests/integration/test_user_errors.py`` walks the package and fails on one that does
not."""

from __future__ import annotations

import errno


class UserError(Exception):
    """Input a user can fix: the message is one line naming the file or argument and the problem."""


class ConfigError(UserError, ValueError):
    """An unknown experiment, unknown key or a value of the wrong type (re-exported by :mod:`miar.config`)."""


def os_error_line(e: OSError) -> str:
    """``"<file>: <problem>"`` for ``e`` (``PermissionError``, ``ENOSPC``, ``EROFS``, ...)."""
    what = e.strerror or (errno.errorcode.get(e.errno, "") if e.errno else "") or str(e) or type(e).__name__
    names = [str(n) for n in (e.filename, e.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else what


__all__ = ["ConfigError", "UserError", "os_error_line"]
