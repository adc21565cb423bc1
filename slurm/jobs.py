"""What a submitted job runs: one stage entry point, in the job's own process.

A non-zero status or a bad-input error raises :class:`StageFailed`, so the submitit job fails,
the SLURM job exits non-zero and ``afterok`` dependents never start.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

from resa_core.errors import UserError


class StageFailed(RuntimeError):
    """A stage entry point exited unsuccessfully."""


def run_stage(command: str, argv: Sequence[str], threads: int) -> str:
    """Run ``python -m <command> <argv>`` in-process with ``threads`` CPU threads."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    main = importlib.import_module(f"{command}.cli").main
    printable = " ".join(["python -m", command, *argv])
    print(printable, flush=True)
    try:
        status = main(list(argv))
    except UserError as err:
        raise StageFailed(f"{printable}: error: {err}") from None
    if status:
        raise StageFailed(f"{printable}: exited with status {status}")
    return printable
