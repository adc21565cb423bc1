"""Few-shot kernel solver: optimality in float64, batch-independence, and the gathered-row normalisation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from downstream.episodes import sample_episodes
from downstream.logreg import fit_batched_logreg, logreg_objective
from downstream.tasks.fewshot import episode_accuracies, inverse_row_norms, query_logits, support_grams


def _episodes(count: int, n_per_class: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-norm float64 supports ``(E, 5 * n_per_class, dim)`` with labels, classes shifted apart."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(5).repeat_interleave(n_per_class).repeat(count, 1)
    means = torch.randn(count, 5, dim, generator=generator, dtype=torch.float64)
    features = means.gather(1, labels[..., None].expand(-1, -1, dim)) * 0.5
    features = features + torch.randn(features.shape, generator=generator, dtype=torch.float64)
    return F.normalize(features, dim=-1), labels


def _newton_solution(features: torch.Tensor, labels: torch.Tensor, C: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One episode's optimum by plain Newton on the primal (W, b) in float64, independent of the solver."""
    dim = features.shape[1]
    theta = torch.zeros(dim * 5 + 5, dtype=torch.float64)

    def objective(flat):
        return logreg_objective(flat[: dim * 5].view(1, dim, 5), flat[dim * 5:].view(1, 5), features[None],
                                labels[None], C).sum()

    for _ in range(30):
        gradient = torch.autograd.functional.jacobian(objective, theta)
        if gradient.abs().max() < 1e-13:
            break
        hessian = torch.autograd.functional.hessian(objective, theta, vectorize=True)
        hessian += 1e-12 * torch.eye(len(theta), dtype=torch.float64)  # the bias is unpenalised: b + c*1 is flat
        theta = theta - torch.linalg.lstsq(hessian, gradient).solution
    return theta[: dim * 5].view(dim, 5), theta[dim * 5:]


# n < D, n > D (rank-deficient Gram), and a C other than 1 (the solver scales by C and 1 / C)
@pytest.mark.parametrize(("n_per_class", "dim", "C"), [(5, 40, 1.0), (3, 8, 1.0), (5, 40, 0.3)])
def test_float64_solution_is_the_optimum_and_independent_of_the_batch(n_per_class, dim, C):
    features, labels = _episodes(4, n_per_class, dim, seed=dim)
    weights, bias = fit_batched_logreg(features, labels, 5, C=C)
    for episode in range(4):
        alone_w, alone_b = fit_batched_logreg(features[episode:episode + 1], labels[episode:episode + 1], 5, C=C)
        assert torch.allclose(alone_w[0], weights[episode], rtol=1e-9, atol=1e-12)
        assert torch.allclose(alone_b[0], bias[episode], rtol=1e-9, atol=1e-12)
        newton_w, newton_b = _newton_solution(features[episode], labels[episode], C=C)
        assert torch.allclose(weights[episode], newton_w, rtol=1e-8, atol=1e-10)
        # the intercept is unpenalised: only its differences between classes are determined
        centred = bias[episode] - bias[episode].mean()
        assert torch.allclose(centred, newton_b - newton_b.mean(), rtol=1e-8, atol=1e-10)
        w = weights[episode:episode + 1].clone().requires_grad_()
        b = bias[episode:episode + 1].clone().requires_grad_()
        logreg_objective(w, b, features[episode:episode + 1], labels[episode:episode + 1], C).sum().backward()
        assert w.grad.abs().max() < 1e-9 and b.grad.abs().max() < 1e-9


def test_only_the_gathered_rows_are_normalised_and_scale_does_not_matter():
    generator = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(10), 30)
    features = torch.randn(300, 64, generator=generator, dtype=torch.float64) + torch.randn(
        10, 64, generator=generator, dtype=torch.float64)[labels]
    scaled = features * torch.rand(300, 1, generator=generator, dtype=torch.float64).mul(50).add(0.01)
    episodes = sample_episodes(labels, 5, 2, 5, 20, np.random.default_rng(0))
    inverse_norms = inverse_row_norms(scaled)
    gram = support_grams(scaled, inverse_norms, episodes.support)
    unit = F.normalize(features, dim=1)
    support, query = unit[episodes.support], unit[episodes.query]
    assert torch.allclose(gram, support @ support.mT, atol=1e-12)
    dual = torch.randn(20, support.shape[1], 5, generator=generator, dtype=torch.float64)
    bias = torch.randn(20, 5, generator=generator, dtype=torch.float64)
    logits = query_logits(scaled, inverse_norms, episodes.support, episodes.query, dual, bias)
    assert torch.allclose(logits, query @ support.mT @ dual + bias[:, None, :], atol=1e-12)
    assert np.array_equal(episode_accuracies(scaled, episodes, 5, 1.0, 7),
                          episode_accuracies(features, episodes, 5, 1.0, 20))
