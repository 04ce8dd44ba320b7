"""What stops a training run with one line instead of a traceback, before its record is written: a loss or
predictions that became NaN or infinite (:class:`Diverged`), and a training state that cannot be saved
(out of memory while serialising it, a full disk or a read-only folder while writing it: a
:class:`~miar.records.RecordError` naming the file)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from miar.errors import UserError
from miar.records import RecordError, atomic_write


class Diverged(UserError, FloatingPointError):
    """The loss or the predictions became NaN or infinite: the run stops, its record is not written."""


def check_finite(run: str, epoch: int, loss: float, pred: np.ndarray) -> None:
    """Raise :class:`Diverged` naming ``run`` and ``epoch`` if ``loss`` or any prediction is not finite."""
    if math.isfinite(loss) and np.isfinite(pred).all():
        return
    what = f"train loss {loss}" if not math.isfinite(loss) else "non-finite validation predictions"
    raise Diverged(f"{run}: training diverged at epoch {epoch} ({what}); no record written "
                   f"(try a lower train.lr, or train.grad_clip > 0)")


def save_state(path: Path, state) -> None:
    """``torch.save(state)`` to ``path`` atomically; out of memory or disk is one :class:`RecordError` line."""
    buf = io.BytesIO()
    try:
        torch.save(state, buf)
    except MemoryError:  # the state is serialised in memory before it is written
        raise RecordError(f"{path}: out of memory while saving") from None
    atomic_write(path, buf.getvalue())  # a full disk or a read-only folder: RecordError naming the file


__all__ = ["Diverged", "check_finite", "save_state"]
