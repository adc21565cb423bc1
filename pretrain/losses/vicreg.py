"""VICReg loss (Bardes et al., ICLR 2022, Eqs. 1-6) as a pure function.

Reference: facebookresearch/vicreg ``main_vicreg.py`` ``VICReg.forward``: invariance =
``mse_loss(x, y)``; variance = mean hinge ``relu(1 - sqrt(var + 1e-4))`` per dimension (Eq. 1,
gamma = 1, epsilon = 1e-4), averaged over the two branches; covariance = sum of squared
off-diagonal entries of each branch's covariance over ``num_features`` (Eq. 4). Coefficients
25 / 25 / 1 are the paper's ImageNet lambda / mu / nu (Section 4.1, ``--sim-coeff``,
``--std-coeff``, ``--cov-coeff`` defaults).

Pass the global batch (gathered with gradient under DDP), as the original gathers ``x`` and
``y`` (``FullGatherLayer``) before the variance and covariance terms; its invariance term is
the per-rank MSE, whose DDP-averaged gradient equals the global MSE's, so the single-process
loss on the global batch is the same objective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pretrain.losses.barlow import off_diagonal


def variance_term(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Eq. 1 with gamma = 1: mean over dimensions of ``relu(1 - std)`` (unbiased variance)."""
    return torch.mean(F.relu(1 - torch.sqrt(x.var(dim=0) + eps)))


def covariance_term(x: torch.Tensor) -> torch.Tensor:
    """Eq. 4: squared off-diagonal covariances summed, divided by the dimension."""
    x = x - x.mean(dim=0)
    cov = (x.T @ x) / (x.shape[0] - 1)
    return off_diagonal(cov).pow(2).sum() / x.shape[1]


def vicreg_loss(x: torch.Tensor, y: torch.Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                cov_coeff: float = 1.0) -> torch.Tensor:
    """Eq. 6: ``lambda s(x, y) + mu [v(x) + v(y)] / 2 + nu [c(x) + c(y)]`` (the reference's scaling)."""
    repr_loss = F.mse_loss(x, y)
    std_loss = variance_term(x) / 2 + variance_term(y) / 2
    cov_loss = covariance_term(x) + covariance_term(y)
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss
