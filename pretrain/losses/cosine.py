"""Negative-cosine prediction losses of BYOL and SimSiam (no negatives, not batch-coupled).

* :func:`byol_loss` (Grill et al. 2020 Eq. 2): ``||p̄ - z̄'||² = 2 - 2 cos(p, z')``, target
  detached; solo-learn ``solo/losses/byol.py::byol_loss_func`` (simplified form).
* :func:`simsiam_loss` (Chen & He 2021 Eq. 1): ``-cos(p, stopgrad(z))``; solo-learn
  ``solo/losses/simsiam.py::simsiam_loss_func`` (simplified form).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1).mean()


def simsiam_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()
