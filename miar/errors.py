"""One line for an operating-system error: the file (or files) and the problem, never a traceback."""

from __future__ import annotations

import errno


def os_error_line(e: OSError) -> str:
    """``"<file>: <problem>"`` for ``e`` (``PermissionError``, ``ENOSPC``, ``EROFS``, ...)."""
    what = e.strerror or (errno.errorcode.get(e.errno, "") if e.errno else "") or str(e) or type(e).__name__
    names = [str(n) for n in (e.filename, e.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else what


__all__ = ["os_error_line"]
