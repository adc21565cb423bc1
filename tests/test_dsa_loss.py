"""DSA's terms (pretrain/losses/dsa.py) against a loop-by-loop transcription of the paper's Eq. 9-17.

The transcription writes each equation as printed, one anchor and one pair at a time: ``f_s`` on
the concatenated pair (Eq. 9), the row normalisation, the Euclidean distances as explicit
differences, the mutual-neighbour count of Eq. 14 from sorted neighbour lists, ``log(1 + ...)``
literally (Eq. 10/16) and the Frobenius norm of Eq. 13. Forward and gradients (features and
``f_s``) must agree to 1e-6 in float64.
"""

import math

import pytest
import torch

from pretrain.losses.dsa import connectivity_score, dsa_regulariser
from pretrain.methods.dsa_plugin import SimilarityNetwork

ALPHA, NU, UPSILON, TAU, ETA = 1.0, 0.1, 100.0, 0.5, 4


def neighbours(points, i, k):
    """N_eta(z^_i): the k nearest others by Euclidean distance."""
    distances = [((points[i] - points[j]) ** 2).sum().item() if j != i else math.inf for j in range(len(points))]
    return set(sorted(range(len(points)), key=distances.__getitem__)[:k])


def transcription(z, aux, f_s, use_score=True):
    n = z.shape[0]
    # Eq. 9: M_ij = f_s(cat(z_i, z_j)), normalised over the row (softmax: the module's documented choice 1)
    scores = [[f_s(torch.cat([z[i], z[j]])[None])[0, 0] for j in range(n)] for i in range(n)]
    m = [[torch.exp(scores[i][j]) / sum(torch.exp(s) for s in scores[i]) for j in range(n)] for i in range(n)]
    # Eq. 11-12: M^pre_ij = exp(-||z^_i - z^_j||^2 / tau) normalised over the row
    pre = [[torch.exp(-((aux[i] - aux[j]) ** 2).sum() / TAU) for j in range(n)] for i in range(n)]
    pre = [[pre[i][j] / sum(pre[i]) for j in range(n)] for i in range(n)]
    # Eq. 13: ||M^pre - M||_F^2
    con = sum((pre[i][j] - m[i][j]) ** 2 for i in range(n) for j in range(n))
    # Eq. 14-15: s_i = #{p in N(i) : i in N(p)}, sc = s_i / eta
    sc = [sum(i in neighbours(aux, p, ETA) for p in neighbours(aux, i, ETA)) / ETA if use_score else 1.0
          for i in range(n)]
    # Eq. 16 (Eq. 10 with sc = 1): log(1 + sum_i sc_i sum_j exp((2 M_ij - alpha) ||z_i - z_j||^2 / tau))
    total = sum(sc[i] * sum(torch.exp((2 * m[i][j] - ALPHA) * ((z[i] - z[j]) ** 2).sum() / TAU) for j in range(n))
                for i in range(n))
    am = torch.log(1 + total)
    return NU * am + UPSILON * con  # Eq. 17 without L_ssl


def inputs(seed=0, n=10, dim=6, aux_dim=5):
    g = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.normalize(torch.randn(n, dim, generator=g, dtype=torch.float64), dim=1)
    aux = torch.randn(n, aux_dim, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    f_s = torch.nn.Sequential(torch.nn.Linear(2 * dim, 7), torch.nn.ReLU(), torch.nn.Linear(7, 1)).double()
    return z.requires_grad_(True), aux, f_s


def ours(z, aux, f_s, use_score=True):
    net = SimilarityNetwork(z.shape[1], 7).double()
    net.first, net.second = f_s[0], f_s[2]  # the same weights, evaluated as W_a z_i + W_b z_j
    loss, _ = dsa_regulariser(z, net.pair_scores(z), aux, alpha=ALPHA, nu=NU, upsilon=UPSILON, knn=ETA,
                              temperature=TAU, use_score=use_score)
    return loss


@pytest.mark.parametrize("use_score", [True, False])
def test_forward_and_gradients_match_the_equations(use_score):
    z, aux, f_s = inputs()
    reference = transcription(z, aux, f_s, use_score)
    ref_grads = torch.autograd.grad(reference, [z, *f_s.parameters()])
    loss = ours(z, aux, f_s, use_score)
    grads = torch.autograd.grad(loss, [z, *f_s.parameters()])
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6, abs=1e-9)
    for ref, got in zip(ref_grads, grads, strict=True):
        assert (got - ref).norm() <= 1e-6 * ref.norm() + 1e-12
        assert ref.norm() > 0


def test_connectivity_score_is_one_inside_a_cluster_and_zero_for_an_outlier():
    g = torch.Generator().manual_seed(3)
    cluster = 0.01 * torch.randn(6, 3, generator=g, dtype=torch.float64)
    outlier = torch.tensor([[50.0, 0.0, 0.0]], dtype=torch.float64)
    far = torch.tensor([[-50.0, 0.0, 0.0], [-50.0, 0.1, 0.0], [-50.0, 0.0, 0.1]], dtype=torch.float64)
    score = connectivity_score(torch.cat([cluster, outlier, far]), 5)
    assert score[:6].tolist() == [1.0] * 6  # every member's 5 neighbours are the other 5, mutually
    assert score[6].item() == 0.0  # nobody has the outlier among their 5 nearest
