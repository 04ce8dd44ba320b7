"""Ctrl-C that always ends the command: the first SIGINT arms a watchdog, then unwinds as usual.

``KeyboardInterrupt`` cleans up (cancelled runs, stopped workers and kernels, released locks) and the command
exits 130. If that teardown hangs (a Dask close that never returns, a thread joined at interpreter exit), the
watchdog kills this process's children and leaves with 130 after :data:`EXIT_GRACE_S`. Installed only by the
command line (``miar``, ``python -m miar.cli``), never when ``main()`` is called in a test or a notebook.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

EXIT_GRACE_S = 20.0  # after Ctrl-C the command exits 130 within this, whatever a library's teardown does
_armed = threading.Event()


def hard_exit(code: int) -> None:
    """Kill what this process started (workers, kernels) and leave now: the last resort of a stuck teardown."""
    try:
        import psutil
        for k in psutil.Process().children(recursive=True):
            try:
                k.kill()
            except psutil.Error:
                pass
    except Exception:  # psutil missing or the process table unreadable: exit anyway
        pass
    try:
        print(f"interrupted (teardown took over {EXIT_GRACE_S:.0f} s; stopped hard)", file=sys.stderr, flush=True)
        sys.stdout.flush()
    except Exception:
        pass
    os._exit(code)


def on_sigint(signum, frame):
    """Arm the watchdog once, then raise KeyboardInterrupt as Python's own handler would."""
    if not _armed.is_set():
        _armed.set()
        t = threading.Timer(EXIT_GRACE_S, hard_exit, args=(130,))
        t.daemon = True
        t.start()
    raise KeyboardInterrupt


def install_sigint_watchdog() -> None:
    """In the main thread, where Ctrl-C would raise KeyboardInterrupt anyway (an ignored SIGINT stays ignored)."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_sigint)


__all__ = ["EXIT_GRACE_S", "hard_exit", "install_sigint_watchdog", "on_sigint"]
