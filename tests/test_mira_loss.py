"""MIRA's loss (pretrain/losses/mira.py) against the paper's equations (Lee et al., NeurIPS 2022)."""

from __future__ import annotations

import pytest
import torch

from pretrain.losses.mira import BETA, TAU_S, TAU_T, mira_loss, mira_pseudo_labels


def eq7_eq5_transcription(logits: torch.Tensor, tau_t: float, beta: float, n_updates: int) -> torch.Tensor:
    """Eq. 7 literally (``p = softmax(f / tau_t)``, ``p^(1/(1-beta))`` as a power, ``u^(0) = 1``), then Eq. 5."""
    p = torch.softmax(logits / tau_t, dim=1)
    p_pow = p ** (1 / (1 - beta))
    u = torch.ones(p.shape[1], dtype=p.dtype)
    for _ in range(n_updates):
        denom = (u[None, :] ** (-beta / (1 - beta)) * p_pow).sum(dim=1, keepdim=True)  # sum_k
        u = ((p_pow / denom).mean(dim=0)) ** (1 - beta)  # [1/B sum_i ...]^(1-beta)
    numerator = u[None, :] ** (-beta / (1 - beta)) * p_pow
    return numerator / numerator.sum(dim=1, keepdim=True)


def eq8_transcription(u1, u2, f1, f2, tau_s):
    """Eq. 8: ``-1/B sum_ij u1_ij log q2_ij - 1/B sum_ij u2_ij log q1_ij``, ``q = softmax(f / tau_s)``."""
    q1, q2 = torch.softmax(f1 / tau_s, dim=1), torch.softmax(f2 / tau_s, dim=1)
    batch = f1.shape[0]
    return -(u1 * q2.log()).sum() / batch - (u2 * q1.log()).sum() / batch


def _logits(*shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("n_iters", [0, 3, 30])
def test_pseudo_labels_match_eq7_then_eq5(n_iters):
    teacher = _logits(24, 50)
    expected = eq7_eq5_transcription(teacher, TAU_T, BETA, n_iters + 1)  # + the initial update from u = 1
    got = mira_pseudo_labels(teacher, TAU_T, BETA, n_iters)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(got.sum(dim=1), torch.ones(24, dtype=torch.float64))


def test_loss_and_gradient_match_eq8():
    """Two crops: the loss is Eq. 8 / 2 (train.py::loss_func averages the two targets); gradient too."""
    f1, f2, t1, t2 = (_logits(16, 40, seed=s) for s in range(4))
    f1.requires_grad_(True)
    f2.requires_grad_(True)
    loss = mira_loss([f1, f2], [t1, t2], TAU_S, TAU_T, BETA, 30)
    grad = torch.autograd.grad(loss, (f1, f2))

    g1, g2 = f1.detach().clone().requires_grad_(True), f2.detach().clone().requires_grad_(True)
    u1, u2 = (eq7_eq5_transcription(t, TAU_T, BETA, 31) for t in (t1, t2))
    expected = eq8_transcription(u1, u2, g1, g2, TAU_S) / 2
    expected_grad = torch.autograd.grad(expected, (g1, g2))
    assert abs(loss.item() - expected.item()) <= 1e-6 * abs(expected.item())
    for a, b in zip(grad, expected_grad, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_multicrop_small_crops_predict_both_targets():
    """With small crops each target is predicted from every other crop (train.py::loss_func)."""
    crops = [_logits(8, 20, seed=s) for s in range(4)]
    teacher = [_logits(8, 20, seed=10 + s) for s in range(2)]
    u1, u2 = (mira_pseudo_labels(t) for t in teacher)
    logq = [torch.log_softmax(c / TAU_S, dim=1) for c in crops]
    ce = lambda u, lq: -(u * lq).sum(dim=1).mean()  # noqa: E731
    expected = ((ce(u1, logq[1]) + ce(u1, logq[2]) + ce(u1, logq[3])) / 3
                + (ce(u2, logq[0]) + ce(u2, logq[2]) + ce(u2, logq[3])) / 3) / 2
    torch.testing.assert_close(mira_loss(crops, teacher), expected, rtol=1e-12, atol=0)


def test_fixed_point_is_the_optimum_of_eq4():
    """The fixed point satisfies the optimality (KKT) condition of Eq. 4, whose solution Eq. 5 states.

    Eq. 4: ``J(W) = -1/B sum_ij w_ij log p_ij + (1-beta)/B sum_ij w_ij log w_ij + beta sum_j wbar_j log wbar_j``
    with ``wbar_j = 1/B sum_i w_ij`` and each row ``w_i`` on the simplex. With the multipliers
    ``lambda_i`` of the row constraints (``w_ij > 0`` at the optimum, so the positivity constraints
    are inactive), stationarity of the Lagrangian reads

        B dJ/dw_ij = -log p_ij + (1-beta)(log w_ij + 1) + beta(log wbar_j + 1) = -B lambda_i  for every j,

    i.e. the gradient is constant along each row, equivalently ``log w_ij = (log p_ij - beta log
    wbar_j) / (1 - beta) + c_i``, which is Eq. 5 after normalising each row. The test checks both
    forms: the autograd gradient of J varies along no row by more than 1e-5, and W equals Eq. 5's
    right-hand side evaluated at W's own marginal to 1e-5. J is strictly convex (Proposition 1),
    so this point is the unique optimum.
    """
    logits = _logits(64, 30, seed=5) * 3
    w = mira_pseudo_labels(logits, TAU_T, BETA, n_iters=300).requires_grad_(True)
    log_p = torch.log_softmax(logits / TAU_T, dim=1)
    wbar = w.mean(dim=0)
    batch = w.shape[0]
    objective = (-(w * log_p).sum() / batch + (1 - BETA) * (w * w.log()).sum() / batch
                 + BETA * (wbar * wbar.log()).sum())
    (grad,) = torch.autograd.grad(objective, w)
    spread = (batch * grad).amax(dim=1) - (batch * grad).amin(dim=1)
    assert spread.max().item() <= 1e-5

    w = w.detach()
    rhs = w.mean(dim=0)[None, :] ** (-BETA / (1 - BETA)) * log_p.exp() ** (1 / (1 - BETA))
    torch.testing.assert_close(w, rhs / rhs.sum(dim=1, keepdim=True), rtol=0, atol=1e-5)


def test_default_iterations_are_near_the_fixed_point():
    """30 iterations (Sec. 4.1) already satisfy Eq. 5 closely on random logits (Sec. 4.3's claim)."""
    logits = _logits(256, 100, seed=7) * 3
    w = mira_pseudo_labels(logits)
    rhs = w.mean(dim=0)[None, :] ** (-BETA / (1 - BETA)) * torch.softmax(logits / TAU_T, 1) ** (1 / (1 - BETA))
    assert (w - rhs / rhs.sum(dim=1, keepdim=True)).abs().max().item() <= 1e-4


def test_half_precision_runs_in_float32():
    labels = mira_pseudo_labels(_logits(8, 10).to(torch.bfloat16))
    assert labels.dtype == torch.float32
    assert torch.isfinite(labels).all()


def test_beta_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="beta"):
        mira_pseudo_labels(_logits(4, 5), beta=1.0)
