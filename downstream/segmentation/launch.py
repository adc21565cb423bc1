"""Which launcher a run uses, and ``--num-gpus N`` from a plain shell (re-run under torchrun).

mmengine's Runner initialises the process group itself from ``launcher``: ``pytorch`` under
torchrun (``WORLD_SIZE``/``RANK`` set), ``slurm`` under ``srun`` (``SLURM_NTASKS``/``SLURM_PROCID``).
A plain ``--num-gpus 4`` starts ``torch.distributed.run --nproc_per_node 4`` on this node, as
MMSelfSup's tools/benchmarks/mmsegmentation/mim_dist_train.sh does with ``mim train -G``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from resa_core.errors import UserError

LAUNCHERS = ("auto", "none", "pytorch", "slurm")


def detect_launcher(requested: str) -> tuple[str, int]:
    """The mmengine launcher and world size of this process."""
    if requested == "auto":
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            requested = "pytorch"
        elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:
            requested = "slurm"
        else:
            requested = "none"
    sizes = {"none": "1", "pytorch": os.environ.get("WORLD_SIZE"), "slurm": os.environ.get("SLURM_NTASKS")}
    if sizes[requested] is None:
        raise UserError(f"--launcher {requested}: not started by {'torchrun' if requested == 'pytorch' else 'srun'}")
    return requested, int(sizes[requested])


def torchrun_command(num_gpus: int, argv: Sequence[str]) -> list[str]:
    """The command that runs this CLI with ``argv`` in ``num_gpus`` processes on this node."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={num_gpus}",
        "-m", "downstream", "segmentation", *argv, "--launcher", "pytorch",
    ]
