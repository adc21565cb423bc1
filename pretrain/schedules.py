"""Learning-rate schedule of the ReSA paper (Appendix B.2).

lr = base_lr x batch_size / 256 (linear scaling rule); linear warm-up for ``warmup_epochs``;
then cosine decay to ``min_lr_ratio`` x lr (0.1 for ConvNets: "we set the minimum learning
rate in the cosine decay schedule to 0.1 * lr"). Evaluated per step. With a ``warmup_start``
lr the warm-up is solo-learn's ``warmup_cosine`` (``solo/utils/lr_scheduler.py::
LinearWarmupCosineAnnealingLR._get_closed_form_lr``, per step): ``start + step x (lr - start) /
(warmup - 1)``; the cosine part is the same formula in both.
"""

from __future__ import annotations

import math


def peak_lr(base_lr: float, batch_size: int) -> float:
    return base_lr * batch_size / 256


def lr_at(step: int, total_steps: int, warmup_steps: int, peak: float, min_lr: float,
          warmup_start: float | None = None) -> float:
    if warmup_steps and step < warmup_steps:
        if warmup_start is not None:
            return warmup_start + step * (peak - warmup_start) / max(1, warmup_steps - 1)
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + (peak - min_lr) * (1 + math.cos(math.pi * min(1.0, progress))) / 2
