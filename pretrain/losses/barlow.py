"""Barlow Twins loss (Zbontar et al., ICML 2021, Eq. 1) as a pure function.

Reference: facebookresearch/barlowtwins ``main.py`` ``BarlowTwins.forward``: each embedding is
standardised by an affine-free ``BatchNorm1d`` (training mode: batch mean, biased variance,
eps 1e-5), ``c = bn(z1).T @ bn(z2) / batch_size``, loss ``sum_i (1 - c_ii)^2 + lambd *
sum_{i != j} c_ij^2``. ``scale`` multiplies the whole loss, as solo-learn's
``barlow_loss_func(scale_loss=...)`` (``solo/losses/barlow.py``) whose presets set it.

Pass the embeddings of the *global* batch (gathered with gradient under DDP): the original
sums ``c`` over GPUs with a non-differentiable ``all_reduce``, so each rank back-propagates
only its own slice's term and DDP's averaging scales the gradient by ``1/world_size``; the
gathered form gives the single-process gradient of the same global batch (a deliberate
difference, invisible with one process).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def off_diagonal(x: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square matrix, flattened (barlowtwins ``off_diagonal``)."""
    n, m = x.shape
    if n != m:
        raise ValueError(f"off_diagonal needs a square matrix, got {n}x{m}")
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def batch_standardize(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``BatchNorm1d(affine=False)`` in training mode, without running statistics."""
    return F.batch_norm(z, None, None, training=True, eps=eps)


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """The empirical cross-correlation matrix C of Eq. 2."""
    return batch_standardize(z1).T @ batch_standardize(z2) / z1.shape[0]


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 0.0051, scale: float = 1.0) -> torch.Tensor:
    """Eq. 1: invariance (diagonal to 1) plus ``lambd`` x redundancy reduction (off-diagonal to 0).

    ``lambd`` 0.0051 is the paper's ImageNet value (Section 4, barlowtwins ``main.py --lambd``).
    """
    c = cross_correlation(z1, z2)
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = off_diagonal(c).pow(2).sum()
    return scale * (on_diag + lambd * off_diag)
