"""Cluster priors (pretrain.losses.priors, docs/priors.md): the power law, the marginals it sets, uniform unchanged."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pretrain.losses.mira import mira_pseudo_labels
from pretrain.losses.priors import check_prior_config, power_law_prior, prior_from_config
from pretrain.losses.resa import cosine_similarity_matrix, sinkhorn, sinkhorn_distributed
from pretrain.losses.swav import sinkhorn_codes
from resa_core.errors import UserError

CONVERGED_ITERS = 400  # eps 0.05 on cosines: the marginal error falls below 1e-5 by ~300 iterations (measured)


def _scores(m: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, 16, generator=g, dtype=torch.float64)
    return cosine_similarity_matrix(x, x + 0.3 * torch.randn(m, 16, generator=g, dtype=torch.float64))


def test_power_law_prior_is_pmsn_k_to_the_minus_tau() -> None:
    prior = power_law_prior(5, 0.5)
    assert abs(float(prior.sum()) - 1.0) < 1e-15
    torch.testing.assert_close(prior[0] / prior, torch.arange(1, 6, dtype=torch.float64).sqrt(), rtol=1e-14, atol=0)
    assert prior_from_config({"prior": "uniform", "prior_tau": 0.5}, 5) is None
    with pytest.raises(UserError, match="loss.prior"):
        check_prior_config({"prior": "zipf", "prior_tau": 0.5}, "cfg")


def test_resa_sinkhorn_target_marginal_is_the_ranked_prior_and_follows_the_data() -> None:
    m, eps = 24, 0.05
    scores, prior = _scores(m), power_law_prior(m, 0.5)
    assign = sinkhorn(scores, eps, CONVERGED_ITERS, prior)
    torch.testing.assert_close(assign.sum(1), torch.ones(m, dtype=torch.float64), rtol=0, atol=1e-12)
    # the densest target (largest sum_i exp(S_ij / eps)) gets prior[0], the next prior[1], ...
    density_order = torch.argsort(torch.exp(scores / eps).sum(0), descending=True)
    assert (assign.sum(0)[density_order] / m - prior).abs().max() <= 1e-4
    perm = torch.randperm(m, generator=torch.Generator().manual_seed(1))  # batch order carries no meaning
    torch.testing.assert_close(sinkhorn(scores[perm][:, perm], eps, CONVERGED_ITERS, prior), assign[perm][:, perm],
                               rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(sinkhorn_distributed(scores, eps, CONVERGED_ITERS, prior), assign,
                               rtol=1e-9, atol=1e-12)  # one rank: the sharded version is the same algorithm


def test_swav_codes_prototype_marginal_is_the_prior_in_index_order() -> None:
    g = torch.Generator().manual_seed(2)
    scores = F.normalize(torch.randn(64, 8, generator=g, dtype=torch.float64), dim=1) @ \
        F.normalize(torch.randn(10, 8, generator=g, dtype=torch.float64), dim=1).T
    prior = power_law_prior(10, 0.5)
    codes = sinkhorn_codes(scores, 0.05, CONVERGED_ITERS, prior)
    torch.testing.assert_close(codes.sum(1), torch.ones(64, dtype=torch.float64), rtol=0, atol=1e-12)
    assert (codes.mean(0) - prior).abs().max() <= 1e-4


def test_mira_with_a_prior_satisfies_the_kl_stationarity_condition() -> None:
    """``w_ij ~ (wbar_j / pi_j)^(-beta/(1-beta)) p_ij^(1/(1-beta))`` with ``wbar`` W's own marginal (docs/priors.md)."""
    beta, tau_t, k = 2 / 3, 0.225, 12
    logits = 0.5 * torch.randn(40, k, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    prior = power_law_prior(k, 1.0)
    labels = mira_pseudo_labels(logits, tau_t, beta, 300, prior)
    wbar = labels.mean(0)
    want = (wbar / prior).pow(-beta / (1 - beta)) * F.softmax(logits / tau_t / (1 - beta), dim=1)
    torch.testing.assert_close(labels, want / want.sum(1, keepdim=True), rtol=0, atol=1e-5)
    uniform_wbar = mira_pseudo_labels(logits, tau_t, beta, 300).mean(0)
    assert (wbar - uniform_wbar).abs().max() > 1e-2  # the prior moves the marginal


# The code before the priors extension (pretrain/losses/{resa,swav,mira}.py at cb84c8f), transcribed.
def _sinkhorn_before(scores, eps, n_iters):
    q = torch.exp((scores - scores.max()) / eps).T
    q /= q.sum()
    m = q.shape[0]
    c = torch.full((m,), 1.0 / m, dtype=q.dtype)
    for _ in range(n_iters):
        q *= (c / q.sum(dim=1)).unsqueeze(1)
        q *= (c / q.sum(dim=0)).unsqueeze(0)
    return (q / q.sum(dim=0, keepdim=True)).T


def _codes_before(scores, eps, n_iters):
    q = torch.exp((scores - scores.max()) / eps).T
    n_samples, n_prototypes = q.shape[1], q.shape[0]
    q /= q.sum()
    for _ in range(n_iters):
        q /= q.sum(dim=1, keepdim=True)
        q /= n_prototypes
        q /= q.sum(dim=0, keepdim=True)
        q /= n_samples
    return (q * n_samples).T


def _mira_before(logits, tau_t, beta, n_iters):
    powered = F.softmax(logits / tau_t / (1 - beta), dim=1)
    u = powered.mean(0).pow(1 - beta)
    for _ in range(n_iters):
        weighted = powered / (u.pow(-beta / (1 - beta)) * powered).sum(dim=1, keepdim=True)
        u = weighted.mean(0).pow(1 - beta)
    unnormalised = u.pow(-beta / (1 - beta)) * powered
    return unnormalised / unnormalised.sum(dim=1, keepdim=True)


def test_uniform_prior_reproduces_the_original_arithmetic_bit_for_bit() -> None:
    uniform = prior_from_config({"prior": "uniform", "prior_tau": 0.25}, 16)
    scores = _scores(16).float()
    assert torch.equal(sinkhorn(scores, 0.05, 3, uniform), _sinkhorn_before(scores, 0.05, 3))
    assert torch.equal(sinkhorn_distributed(scores[:, :10].T.contiguous(), 0.05, 3, uniform),
                       _codes_before(scores[:, :10].T.contiguous(), 0.05, 3))
    assert torch.equal(sinkhorn_codes(scores[:, :10], 0.05, 3, uniform), _codes_before(scores[:, :10], 0.05, 3))
    logits = 3 * torch.randn(16, 10, generator=torch.Generator().manual_seed(4))
    assert torch.equal(mira_pseudo_labels(logits, 0.225, 2 / 3, 30, uniform), _mira_before(logits, 0.225, 2 / 3, 30))
