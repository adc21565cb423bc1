"""Learning-rate schedule of the ReSA paper (Appendix B.2).

lr = base_lr x batch_size / 256 (linear scaling rule); linear warm-up for ``warmup_epochs``;
then cosine decay to ``min_lr_ratio`` x lr (0.1 for ConvNets: "we set the minimum learning
rate in the cosine decay schedule to 0.1 * lr"). Evaluated per step.
"""

from __future__ import annotations

import math


def peak_lr(base_lr: float, batch_size: int) -> float:
    return base_lr * batch_size / 256


def lr_at(step: int, total_steps: int, warmup_steps: int, peak: float, min_lr: float) -> float:
    if warmup_steps and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + (peak - min_lr) * (1 + math.cos(math.pi * min(1.0, progress))) / 2
