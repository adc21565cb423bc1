"""Resume mmengine runs under torch >= 2.6 without turning safe loading off for user files.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7's checkpoints
hold its own ``HistoryBuffer`` (the message hub's log history), numpy scalars/arrays and
``getattr(HistoryBuffer, 'min')``-style references to its statistics methods, so
``Runner.resume`` fails with "Unsupported global". :class:`SafeResumeRunner` allow-lists
exactly those, with ``builtins.getattr`` replaced by :func:`history_buffer_method` (a general
``getattr`` would reach ``__globals__`` and from there anything), through
``torch.serialization.safe_globals`` — a context, so only for the duration of the resume — and
only for a checkpoint inside the run's own ``work_dir`` (one mmengine wrote). The user's backbone
file never passes through here: it is loaded by converters.safe_load and by mmengine's
``init_cfg`` with torch's default ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import Runner

from resa_core.errors import UserError


def history_buffer_method(obj, name: str):
    """``getattr`` restricted to a public method of mmengine's HistoryBuffer (class or instance)."""
    is_buffer = obj is HistoryBuffer or isinstance(obj, HistoryBuffer)
    public_method = isinstance(name, str) and not name.startswith("_") and callable(getattr(HistoryBuffer, name, None))
    if not (is_buffer and public_method):
        raise UserError(f"refusing getattr({type(obj).__name__}, {name!r}) in an mmengine checkpoint")
    return getattr(obj, name)


def mmengine_checkpoint_globals() -> list:
    """What an mmengine 0.10.7 training checkpoint pickles besides tensors
    (``torch.serialization.get_unsafe_globals_in_checkpoint`` on one)."""
    core = numpy._core if hasattr(numpy, "_core") else numpy.core
    return [
        HistoryBuffer,
        (history_buffer_method, "builtins.getattr"),
        core.multiarray._reconstruct,
        core.multiarray.scalar,
        numpy.ndarray,
        numpy.dtype,
        *{type(numpy.dtype(name)) for name in ("float64", "float32", "int64", "int32", "bool")},
    ]


class SafeResumeRunner(Runner):
    """mmengine's Runner, whose ``resume`` accepts only its own work_dir's checkpoints, allow-listed."""

    def resume(self, filename: str, *args, **kwargs) -> None:
        work_dir = Path(self.work_dir).resolve()
        if Path(filename).resolve().parent != work_dir:
            raise UserError(
                f"{filename}: resume only reads checkpoints that this run wrote in {work_dir}; "
                "start a fresh run, or pass the backbone with --weights"
            )
        with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
            super().resume(filename, *args, **kwargs)
