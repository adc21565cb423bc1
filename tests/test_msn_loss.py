"""MSN / PMSN loss (pretrain/losses/msn.py) against PMSN Eq. 9 and the MSN authors' code.

Two outside truths: PMSN Eq. 9 written out literally (Sec. 5.2's power-law prior, MSN Eq. 6's
posteriors with a sharpened target), and facebookresearch/msn ``src/losses.py`` (commit 4388dc1)
copied below, which with the uniform prior must give ``ploss + me_max`` exactly, Sinkhorn included.
"""

from __future__ import annotations

import math

import pytest
import torch
from sinkhorn_reference import ref_sinkhorn

from pretrain.losses.msn import SHARPEN, TEMPERATURE, msn_loss, msn_targets, sinkhorn_to_prior
from pretrain.losses.priors import power_law_prior

K, D, B, VIEWS = 12, 8, 10, 3


def reference_msn_loss(anchor_views, target_views, prototypes, T, use_sinkhorn, tau=TEMPERATURE):
    """facebookresearch/msn src/losses.py::init_msn_loss(num_views, tau, me_max=True) ``loss`` and
    ``distributed_sinkhorn`` (single process: ``sinkhorn_reference.ref_sinkhorn``), one-hot prototype
    labels; returns ploss + me_max."""
    softmax = torch.nn.Softmax(dim=1)
    proto_labels = torch.eye(prototypes.shape[0], dtype=prototypes.dtype)
    num_views = anchor_views.shape[0] // target_views.shape[0]

    def sharpen(p, T):
        sharp_p = p**(1. / T)
        sharp_p /= torch.sum(sharp_p, dim=1, keepdim=True)
        return sharp_p

    def snn(query, supports, support_labels, temp=tau):
        query = torch.nn.functional.normalize(query)
        supports = torch.nn.functional.normalize(supports)
        return softmax(query @ supports.T / temp) @ support_labels

    def distributed_sinkhorn(Q, num_itr=3):
        return ref_sinkhorn(Q.T, num_itr).T

    probs = snn(anchor_views, prototypes, proto_labels)
    with torch.no_grad():
        targets = sharpen(snn(target_views, prototypes, proto_labels), T=T)
        if use_sinkhorn:
            targets = distributed_sinkhorn(targets)
        targets = torch.cat([targets for _ in range(num_views)], dim=0)
    loss = torch.mean(torch.sum(torch.log(probs**(-targets)), dim=1))
    avg_probs = torch.mean(probs, dim=0)
    rloss = - torch.sum(torch.log(avg_probs**(-avg_probs))) + math.log(float(len(avg_probs)))
    return loss + rloss


def eq9_transcription(anchor, target, prototypes, tau_pl, lam, sigma=TEMPERATURE, T=SHARPEN):
    """PMSN Eq. 9 without Sinkhorn: ``1/N sum_i H(p+_i, p_i) + lambda KL(pbar || p_PL(tau))``.

    ``p_i = softmax(W^T x_i / sigma)`` (Eq. 6, L2-normalised x and prototypes W), the target
    ``p+ ∝ softmax(W^T x+ / sigma)^(1/T)``, ``[p_PL(tau)]_k = k^-tau / sum_j j^-tau`` (Sec. 5.2),
    ``H(a, b) = -sum_k a_k log b_k``, ``pbar = 1/N sum_i p_i``. The target is a constant (MSN:
    the target branch gets no gradient, ``torch.no_grad()`` in src/losses.py Step 2).
    """
    W = prototypes / prototypes.norm(dim=1, keepdim=True)
    x = anchor / anchor.norm(dim=1, keepdim=True)
    x_plus = target / target.norm(dim=1, keepdim=True)
    p = torch.exp(x @ W.T / sigma)
    p = p / p.sum(dim=1, keepdim=True)
    p_plus = torch.exp(x_plus @ W.detach().T / sigma)
    p_plus = p_plus / p_plus.sum(dim=1, keepdim=True)
    p_plus = p_plus ** (1 / T)
    p_plus = (p_plus / p_plus.sum(dim=1, keepdim=True)).repeat(anchor.shape[0] // target.shape[0], 1)
    cross_entropy = sum(-(p_plus[i] * torch.log(p[i])).sum() for i in range(p.shape[0])) / p.shape[0]
    k = torch.arange(1, prototypes.shape[0] + 1, dtype=torch.float64)
    prior = k ** (-tau_pl) / (k ** (-tau_pl)).sum()
    pbar = p.mean(dim=0)
    return cross_entropy + lam * (pbar * torch.log(pbar / prior)).sum()


def _tensors(seed=0):
    g = torch.Generator().manual_seed(seed)
    anchor = torch.randn(VIEWS * B, D, generator=g, dtype=torch.float64)
    target = torch.randn(B, D, generator=g, dtype=torch.float64)
    prototypes = torch.randn(K, D, generator=g, dtype=torch.float64)
    return anchor, target, prototypes


def _value_and_grads(fn, anchor, prototypes):
    a, q = anchor.clone().requires_grad_(True), prototypes.clone().requires_grad_(True)
    value = fn(a, q)
    return value, torch.autograd.grad(value, (a, q))


@pytest.mark.parametrize(("tau_pl", "lam"), [(0.25, 1.0), (0.5, 5.0), (0.0, 1.0)])
def test_loss_and_gradient_match_eq9(tau_pl, lam):
    anchor, target, prototypes = _tensors()
    prior = power_law_prior(K, tau_pl)
    got, got_grads = _value_and_grads(
        lambda a, q: msn_loss(a, target, q, prior, prior_weight=lam, use_sinkhorn=False)[0], anchor, prototypes)
    want, want_grads = _value_and_grads(lambda a, q: eq9_transcription(a, target, q, tau_pl, lam), anchor, prototypes)
    assert abs(got.item() - want.item()) <= 1e-6 * abs(want.item())
    for a, b in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("use_sinkhorn", [True, False])
def test_uniform_prior_is_the_reference_msn_loss_with_me_max(use_sinkhorn):
    """MSN: ploss + me_max of the authors' code (me_max = KL(pbar || uniform), PMSN footnote 2)."""
    anchor, target, prototypes = _tensors(seed=1)
    uniform = power_law_prior(K, 0.0)
    got, got_grads = _value_and_grads(
        lambda a, q: msn_loss(a, target, q, uniform, use_sinkhorn=use_sinkhorn)[0], anchor, prototypes)
    want, want_grads = _value_and_grads(
        lambda a, q: reference_msn_loss(a, target, q, SHARPEN, use_sinkhorn), anchor, prototypes)
    assert abs(got.item() - want.item()) <= 1e-6 * abs(want.item())
    for a, b in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_power_law_sinkhorn_marginals_match_the_prior():
    """Rows of Q summing to the prior: after enough iterations the prototype marginal is p_PL to 1e-4."""
    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(64, K, generator=g, dtype=torch.float64), dim=1)
    prior = power_law_prior(K, 0.5)
    balanced = sinkhorn_to_prior(probs, prior, n_iters=50)
    torch.testing.assert_close(balanced.sum(dim=1), torch.ones(64, dtype=torch.float64))
    assert (balanced.mean(dim=0) - prior).abs().max().item() <= 1e-4
    three = msn_targets(torch.randn(64, D, generator=g, dtype=torch.float64),
                        torch.randn(K, D, generator=g, dtype=torch.float64), prior)
    torch.testing.assert_close(three.sum(dim=1), torch.ones(64, dtype=torch.float64))


def test_power_law_prior_is_papers_definition():
    prior = power_law_prior(5, 0.25)
    k = torch.arange(1, 6, dtype=torch.float64)
    # p_k ∝ 1/k^tau: p_k k^tau is the same constant for every k
    torch.testing.assert_close(prior * (k ** 0.25), torch.full((5,), float(prior[0]), dtype=torch.float64))
    assert prior.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(power_law_prior(4, 0.0), torch.full((4,), 0.25, dtype=torch.float64))
    with pytest.raises(ValueError):
        power_law_prior(4, -0.1)


def test_bf16_autocast_computes_the_loss_in_float32():
    """msn_train.py converts to fp32 before the loss: under bf16 autocast the matmuls must not drop to bf16."""
    anchor, target, prototypes = (x.float().bfloat16() for x in _tensors(seed=3))
    prior = power_law_prior(K, 0.25).float()
    want = msn_loss(anchor.float(), target.float(), prototypes.float(), prior)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = msn_loss(anchor, target, prototypes.float(), prior)[0]
    assert got.dtype == torch.float32
    assert abs(got.item() - want.item()) <= 1e-6 * abs(want.item())
