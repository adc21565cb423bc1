"""Multinomial logistic regression solved for many small problems at once (few-shot episodes).

Minimises, for every episode e independently, the objective of scikit-learn's
``LogisticRegression(C=C)`` (lbfgs, multinomial, L2, intercept unpenalised)::

    f_e(W, b) = sum_i CE(x_i W + b, y_i) + 0.5 / C * ||W||_F^2

over a weight tensor ``(E, D, K)`` and biases ``(E, K)``. The episodes are independent, so
the minimiser of the sum over episodes is every episode's own minimiser; full-batch L-BFGS
(strong-Wolfe line search) on that sum replaces a Python loop of sklearn fits.

The optimum's W lies in the span of the episode's n support features (the gradient of the
loss is a combination of them and the penalty is isotropic), so the problem is solved exactly
in an orthonormal basis Q of that span (QR of the supports): W = Q V with V ``(E, n, K)``,
``||W|| = ||V||``. That makes the cost independent of D. With unit-norm features and C = 1 the
problem is well conditioned (Hessian eigenvalues between 1/C and 1/C + n/2), so L-BFGS
converges in a few dozen iterations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GRADIENT_TOLERANCE = 1e-7  # max |gradient| entry at which L-BFGS stops (sklearn lbfgs uses tol=1e-4)
MAX_ITERATIONS = 1000  # as sklearn's max_iter in the reference LogisticRegression(C=1.0, max_iter=1000)


def logreg_objective(
    weights: torch.Tensor, bias: torch.Tensor, features: torch.Tensor, labels: torch.Tensor, C: float
) -> torch.Tensor:
    """Per-episode objective ``(E,)``: summed cross-entropy + ``0.5 / C * ||W||^2``."""
    logits = features @ weights + bias[:, None, :]
    cross_entropy = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
    return cross_entropy.view(labels.shape).sum(1) + 0.5 / C * weights.square().sum((1, 2))


def fit_batched_logreg(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, C: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit every episode: ``features (E, N, D)``, ``labels (E, N)`` -> ``W (E, D, K)``, ``b (E, K)``."""
    features, labels = features.double(), labels.long()
    basis = torch.linalg.qr(features.transpose(1, 2)).Q  # (E, D, min(D, N)), orthonormal columns
    coordinates = features @ basis
    reduced_weights, bias = _lbfgs_fit(coordinates, labels, num_classes, C)
    return basis @ reduced_weights, bias


def _lbfgs_fit(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, C: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-batch L-BFGS from zero on the summed per-episode objectives."""
    episodes, _, dim = features.shape
    weights = torch.zeros(episodes, dim, num_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(episodes, num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weights, bias], lr=1.0, max_iter=MAX_ITERATIONS, tolerance_grad=GRADIENT_TOLERANCE,
        tolerance_change=0.0, history_size=20, line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = logreg_objective(weights, bias, features, labels, C).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weights.detach(), bias.detach()


def predict(weights: torch.Tensor, bias: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Class of each query ``(E, Q)`` (argmax; ties to the lower class index)."""
    return (features.double() @ weights + bias[:, None, :]).argmax(-1)
