"""Working precision of numerically sensitive steps (Sinkhorn, BN statistics).

These steps run in at least fp32 under AMP, and in fp64 when the whole run is fp64
(``run.dtype: float64``), so that two reduction orders of one computation (DDP vs one process)
can be compared to ~1e-12 instead of within fp32 rounding amplified by Sinkhorn's ``1/eps``.
"""

from __future__ import annotations

import torch


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in fp32, or unchanged when it is already fp64."""
    return x if x.dtype == torch.float64 else x.float()
