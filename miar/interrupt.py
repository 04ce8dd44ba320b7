"""Ctrl-C that always ends the command: the first SIGINT arms a watchdog, then unwinds as usual.

``KeyboardInterrupt`` cleans up (cancelled runs, stopped workers and kernels, released locks) and the command
exits 130. If that teardown hangs (a Dask close that never returns, a thread joined at interpreter exit), the
watchdog kills this process's children and leaves with 130 after :data:`EXIT_GRACE_S`. SIGTERM (what Slurm,
systemd and ``kill`` send) gets the same orderly stop: it raises :class:`Terminated` (a ``KeyboardInterrupt``)
and the command exits 143. Installed only by the command line (``miar``, ``python -m miar.cli``), never when
``main()`` is called in a test or a notebook.

:func:`held` defers both signals over a block that must not be cut half-way (starting a local Dask cluster:
one interrupted inside its constructor cannot be stopped, and its ``atexit`` close prints a traceback).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

EXIT_GRACE_S = 20.0  # after Ctrl-C the command exits 130 within this, whatever a library's teardown does
_armed = threading.Event()


class Terminated(KeyboardInterrupt):
    """SIGTERM: unwinds as Ctrl-C does; the command exits 143 (128 + SIGTERM)."""


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


def _arm(code: int) -> None:
    if not _armed.is_set():
        _armed.set()
        t = threading.Timer(EXIT_GRACE_S, hard_exit, args=(code,))
        t.daemon = True
        t.start()


def on_sigint(signum, frame):
    """Arm the watchdog once, then raise KeyboardInterrupt as Python's own handler would."""
    _arm(130)
    raise KeyboardInterrupt


def on_sigterm(signum, frame):
    """Arm the watchdog once, then raise :class:`Terminated`: the orderly stop Ctrl-C gets."""
    _arm(143)
    raise Terminated


def install_sigint_watchdog() -> None:
    """In the main thread, where Ctrl-C would raise KeyboardInterrupt anyway (an ignored SIGINT stays ignored);
    SIGTERM too, where it would kill the process outright (an ignored or handled one is left as it is)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_sigint)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, on_sigterm)


@contextmanager
def held():
    """SIGINT and SIGTERM arriving during the block are delivered when it ends, to the handlers in place (main
    thread only; a signal whose handler is not a Python function, ignored or default, is left as it is). A
    second one of the same kind while held is delivered at once: a start that hangs can still be stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    before = {s: h for s, h in before.items() if callable(h)}
    pending: list[int] = []

    def hold(signum, frame):
        if signum in pending:
            return before[signum](signum, frame)
        pending.append(signum)

    for s in before:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        for s in pending:
            signal.raise_signal(s)  # its handler raises here, after the block


__all__ = ["EXIT_GRACE_S", "Terminated", "hard_exit", "held", "install_sigint_watchdog", "on_sigint", "on_sigterm"]
