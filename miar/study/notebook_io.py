"""Executed notebooks are written like the run records: whole or not at all.

papermill writes its output notebook several times while it runs; a crash or a full disk mid-write would leave a
truncated ``.ipynb`` where the run's notebook belongs. :func:`execute_notebook` has papermill write to a hidden
temporary file beside the target (``.<name>.tmp.ipynb``, same directory, so the rename is atomic), then reads it
back with :mod:`nbformat` and writes it into place with :func:`miar.records.atomic_write` (fsync, rename,
fsync of the directory). A failed execution keeps its notebook when it is whole (for the error), and a torn
temporary is removed. :func:`miar.study.plan.status` counts a run as complete only when its notebook is whole.
"""

from __future__ import annotations

from pathlib import Path

from miar.records import RecordError, atomic_write


def temporary(output: Path) -> Path:
    """Where papermill writes: hidden, beside ``output``, ending in ``.ipynb`` as papermill wants."""
    return Path(output).with_name(f".{Path(output).stem}.tmp.ipynb")


def finalize(tmp: Path, output: Path) -> None:
    """Move papermill's temporary notebook ``tmp`` into ``output`` if it is whole; remove ``tmp`` either way."""
    import nbformat  # lazy: the notebooks extra

    try:
        nb = nbformat.read(str(tmp), as_version=4)
        meta = nb.metadata.get("papermill")
        if meta is not None and "output_path" in meta:
            meta["output_path"] = str(output)  # the notebook names where it lives, not the temporary
        atomic_write(output, nbformat.writes(nb))
    except (OSError, ValueError, UnicodeDecodeError, AttributeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RecordError(f"{output}: the executed notebook was not written whole ({msg})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def execute_notebook(notebook: str | Path, output: str | Path, **kwargs):
    """``papermill.execute_notebook(notebook, output, **kwargs)``, with ``output`` written atomically."""
    import papermill as pm  # lazy: the notebooks extra

    output = Path(output)
    tmp = temporary(output)
    try:
        nb = pm.execute_notebook(str(notebook), str(tmp), **kwargs)
    except BaseException:
        if tmp.is_file():
            try:
                finalize(tmp, output)  # a failed run keeps its (whole) notebook, for the error it shows
            except RecordError:
                pass  # torn: removed; the execution's own error is the one to report
        raise
    finalize(tmp, output)
    return nb


__all__ = ["execute_notebook", "finalize", "temporary"]
