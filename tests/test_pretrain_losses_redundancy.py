"""Barlow Twins and VICReg losses against direct transcriptions of the authors' code (float64)."""

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.losses.barlow import barlow_twins_loss
from pretrain.losses.vicreg import vicreg_loss


def _off_diagonal(x):  # barlowtwins main.py / vicreg main_vicreg.py off_diagonal
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def reference_barlow(z1, z2, lambd, batch_size):
    """barlowtwins main.py BarlowTwins.forward after the projector, one process (all_reduce = identity)."""
    bn = nn.BatchNorm1d(z1.shape[1], affine=False).double()
    c = bn(z1).T @ bn(z2)
    c.div_(batch_size)
    on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
    off_diag = _off_diagonal(c).pow_(2).sum()
    return on_diag + lambd * off_diag


def reference_vicreg(x, y, sim_coeff, std_coeff, cov_coeff, batch_size):
    """vicreg main_vicreg.py VICReg.forward after the projector, one process (gather = identity)."""
    num_features = x.shape[1]
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    cov_loss = _off_diagonal(cov_x).pow_(2).sum().div(num_features) + _off_diagonal(cov_y).pow_(2).sum().div(
        num_features)
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


def _pair(seed, batch=24, dim=16):
    g = torch.Generator().manual_seed(seed)
    # a shared component makes the views correlated, as after training
    base = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    z1 = (base + 0.5 * torch.randn(batch, dim, generator=g, dtype=torch.float64)).requires_grad_()
    z2 = (0.7 * base + 0.5 * torch.randn(batch, dim, generator=g, dtype=torch.float64)).requires_grad_()
    return z1, z2


def _compare(ours_fn, ref_fn, seed):
    z1, z2 = _pair(seed)
    ours = ours_fn(z1, z2)
    grads = torch.autograd.grad(ours, (z1, z2))
    ref = ref_fn(z1, z2)
    ref_grads = torch.autograd.grad(ref, (z1, z2))
    assert abs(ours.item() - ref.item()) <= 1e-6 * max(1.0, abs(ref.item()))
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-6, atol=1e-9)
    return ours.item()


def test_barlow_twins_matches_reference():
    for seed in range(3):
        value = _compare(lambda a, b: barlow_twins_loss(a, b, lambd=0.0051),
                         lambda a, b: reference_barlow(a, b, 0.0051, a.shape[0]), seed)
        assert value > 0


def test_barlow_twins_scale_multiplies():
    z1, z2 = _pair(5)
    torch.testing.assert_close(barlow_twins_loss(z1, z2, 0.005, scale=0.1), 0.1 * barlow_twins_loss(z1, z2, 0.005))


def test_vicreg_matches_reference():
    for seed in range(3):
        _compare(lambda a, b: vicreg_loss(a, b, 25.0, 25.0, 1.0),
                 lambda a, b: reference_vicreg(a, b, 25.0, 25.0, 1.0, a.shape[0]), seed)
    # unequal coefficients catch a swapped term
    _compare(lambda a, b: vicreg_loss(a, b, 3.0, 7.0, 11.0), lambda a, b: reference_vicreg(a, b, 3.0, 7.0, 11.0,
                                                                                         a.shape[0]), 9)
