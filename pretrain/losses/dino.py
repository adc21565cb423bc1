"""DINO's self-distillation loss with teacher centring and sharpening (Caron et al. 2021, Eq. 1-2).

Transcribes facebookresearch/dino ``main_dino.py::DINOLoss`` (solo-learn's
``solo/losses/dino.py`` is the same with two crops): student outputs ``/ τ_s`` split per crop,
teacher ``softmax((t - c) / τ_t)`` over the two global crops only, cross-entropy averaged over
every (teacher crop q, student crop v ≠ q) pair. The centre update ``c <- m c + (1 - m) mean(t)``
(mean over the *global* batch, all-reduced) is :func:`batch_center`; the method applies it at the
step's commit so that a checkpoint always holds a step-boundary centre.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pretrain import distributed


def teacher_temperature(epoch: int, warmup_temp: float, temp: float, warmup_epochs: int, epochs: int) -> float:
    """DINO's schedule: ``np.linspace(warmup_temp, temp, warmup_epochs)`` then ``temp`` (main_dino.py)."""
    schedule = np.concatenate((np.linspace(warmup_temp, temp, warmup_epochs), np.ones(epochs - warmup_epochs) * temp))
    return float(schedule[min(epoch, len(schedule) - 1)])


def dino_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, num_crops: int,
              student_temp: float, teacher_temp: float) -> torch.Tensor:
    """``student``: ``(num_crops x B, P)`` logits; ``teacher``: ``(2 x B, P)`` logits of the global crops."""
    student_out = (student / student_temp).chunk(num_crops)
    teacher_out = F.softmax((teacher - center) / teacher_temp, dim=-1).detach().chunk(2)
    total, terms = 0.0, 0
    for iq, q in enumerate(teacher_out):
        for v, s in enumerate(student_out):
            if v == iq:
                continue
            total = total + torch.sum(-q * F.log_softmax(s, dim=-1), dim=-1).mean()
            terms += 1
    return total / terms


@torch.no_grad()
def batch_center(teacher: torch.Tensor) -> torch.Tensor:
    """Mean teacher output over the global batch: local sum all-reduced, divided by the global count."""
    total = distributed.all_reduce_sum(torch.sum(teacher, dim=0, keepdim=True))
    return total / (len(teacher) * distributed.world_size())
