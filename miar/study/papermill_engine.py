"""A papermill engine that keeps one Jupyter kernel per process and clears it between notebooks.

A sweep executes hundreds of short notebooks. With a fresh kernel each, every run pays for the kernel's
start and for importing torch, pandas, matplotlib, scikit-learn and ``torch._dynamo`` (which torch's
optimizers import on first use): about 7 s of a 20 s MOSI run on this project's 2-core machine.
``engine_name=ENGINE`` keeps the kernel of the first notebook and, before each later one, runs
``IPython``'s ``reset(new_session=True)`` in it: the user namespace is emptied, matplotlib's figures are
closed and execution counts start again at 1, so the executed notebook reads as from a fresh kernel; the
kernel also moves to the notebook's working directory (papermill's ``cwd``), which a kernel started for an
earlier notebook (another sweep, on a long-lived worker) need not share.
Imported modules stay loaded; that is the point. The kernel client's channels stay open too (a new client
waits about 0.2 s for the kernel's IOPub to go quiet before it is ready); nbclient reads only the replies to
the requests of the notebook at hand.

Every run seeds Python, NumPy and torch itself (:func:`miar.train.fit`), so a run's metrics do not
depend on what ran before it in the kernel; ``tests/system/test_sweep.py`` checks this against a lone ``fit``.
A kernel that failed a notebook is shut down (:func:`shutdown`) and the next notebook starts a new one.

The kernel belongs to the thread that started it (a Dask worker with ``--nthreads 2`` keeps two), and its
stdout and stderr go to that thread's :func:`kernel_log` (a temporary file), never to the worker's own file
descriptors: the executor copies the part written during a failed run into the run's log.
:func:`shutdown_all` (a worker's teardown, and at exit) stops every kernel of the process.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import uuid

from jupyter_core.utils import run_sync
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

from miar.errors import UserError

ENGINE = "miar-reused-kernel"

RESET = """\
import sys as _sys
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
get_ipython().reset(new_session=True)
"""


class KernelResetError(UserError, RuntimeError):
    """The reused kernel did not clear its namespace."""


class _Client(PapermillNotebookClient):
    reused = False

    async def async_start_new_kernel_client(self):
        """The client of a new kernel; the kernel's connection file is removed once both sides have read it, so
        none is left behind when the worker is killed (the manager keeps the ports and key in memory)."""
        kc = await super().async_start_new_kernel_client()
        self.km.cleanup_connection_file()
        return kc

    def papermill_execute_cells(self):
        if self.reused:  # silent, no history: the kernel's execution count is not advanced
            # papermill changed this process's directory to the notebook's cwd; the old kernel started elsewhere
            code = RESET + f"import os as _os\n_os.chdir({os.getcwd()!r})\ndel _os\n"
            reply = self.wait_for_reply(self.kc.execute(code, silent=True, store_history=False))
            if reply is None or reply["content"].get("status") != "ok":
                raise KernelResetError(f"the reused kernel could not be reset (--fresh-kernels starts a new one per "
                                       f"run): {reply and reply['content']}")
        super().papermill_execute_cells()


_local = threading.local()  # .km: this thread's kernel manager; .log: its kernel's output file
_managers: set = set()  # every running kernel's manager in this process (shutdown_all)
_lock = threading.Lock()


def _km():
    return getattr(_local, "km", None)


def kernel_log():
    """This thread's file for its kernel's stdout and stderr (created on first use)."""
    if getattr(_local, "log", None) is None:
        _local.log = tempfile.TemporaryFile()
    return _local.log


class ReusedKernelEngine(NBClientEngine):
    """papermill's nbclient engine, except that the kernel outlives the notebook (one per thread)."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                 stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
        # the arguments exactly as NBClientEngine.execute_managed_notebook prepares them
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs, timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout, kernel_name=kernel_name, log=logger, log_output=log_output,
            stdout_file=stdout_file, stderr_file=stderr_file)
        if _km() is not None and (_km().kernel_name != kernel_name or not _km().has_kernel):
            shutdown()
        client = _Client(nb_man, km=_km(), **final_kwargs)
        client.reused = _km() is not None
        if _km() is None:
            _local.km = client.create_kernel_manager()
            _place_connection_file(_local.km)
            with _lock:
                _managers.add(_local.km)
        client.owns_km = False  # nbclient leaves the kernel running after the notebook
        kc = getattr(_local, "kc", None)
        if client.reused and kc is not None and kc.channels_running:
            client.kc = kc  # the open channels too: a new client waits ~0.2 s to flush IOPub before it is ready
        try:
            return client.execute(stdout=kernel_log(), stderr=kernel_log())
        finally:
            _local.kc = client.kc  # kept open for the next notebook (shutdown() stops it)


def _place_connection_file(km) -> None:
    """In ``$MIAR_KERNEL_DIR`` when the worker has one (a LocalCluster's: its driver removes the folder, so a
    worker killed before its kernel was ready leaves no file behind); else where Jupyter puts it."""
    folder = os.environ.get("MIAR_KERNEL_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        km.connection_file = os.path.join(folder, f"kernel-{uuid.uuid4().hex}.json")


def _stop(km) -> None:
    with _lock:
        _managers.discard(km)
    if km is not None and km.has_kernel:
        try:
            run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # already dead: nothing to stop
            pass


def shutdown() -> None:
    """Stop this thread's reused kernel, if any (after a failed notebook; --fresh-kernels after each)."""
    km, _local.km = _km(), None
    kc, _local.kc = getattr(_local, "kc", None), None
    if kc is not None:
        try:
            kc.stop_channels()
        except Exception:  # already closed
            pass
    _stop(km)


def shutdown_all() -> None:
    """Stop every kernel this process started (a Dask worker's teardown, and at exit)."""
    with _lock:
        kms = list(_managers)
    for km in kms:
        _stop(km)


papermill_engines.register(ENGINE, ReusedKernelEngine)
atexit.register(shutdown_all)
