"""Few-shot classification with logistic regression on frozen features (DSA paper, Table VI).

N-way K-shot episodes are drawn from the test role (``np.random.default_rng(seed)``; saved
under ``<run>/episodes/`` and reused, so every backbone sees the same episodes), features are
L2-normalised, and a multinomial logistic regression (the objective of scikit-learn's
``LogisticRegression(C=1.0, max_iter=1000)``) is fitted on each episode's support set and
scored on its queries, batched over episodes (:mod:`downstream.logreg`). DSA reports 5-way
1-shot and 5-shot accuracies with 95% confidence intervals over 2000 episodes on FC100 (the
test classes of the superclass split), CUB-200 and Plant Disease; the demo runs 600.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from downstream.config import require_positive_int, require_positive_int_list
from downstream.episodes import Episodes, sample_episodes, shared_episodes
from downstream.features import FeatureSet
from downstream.gathered_products import cosine_grams, primal_scores
from downstream.logreg import fit_kernel_logreg
from downstream.tasks import Task, TaskContext
from resa_core.errors import UserError

SCHEMA = {
    "ways": 5,  # DSA Table VI: (5, 1) and (5, 5) tasks
    "shots": [1, 5],  # DSA Table VI
    "queries": 15,  # per class, as in the meta-test episodes of RFS (Tian et al. 2020)
    "episodes": 2000,  # DSA Table VI averages over 2000 episodes (the demo pipeline sets 600)
    "C": 1.0,  # inverse L2 strength of the reference sklearn LogisticRegression(C=1.0)
    "episodes_per_solve": 2000,  # episodes fitted together (memory: ~this x (support^2 + ways x query) floats)
}
CONFIDENCE_Z = 1.96  # two-sided 95% normal quantile
NORM_EPS = 1e-12  # as F.normalize: a zero feature row stays zero instead of dividing by 0


def mean_and_ci95(accuracies: np.ndarray) -> tuple[float, float]:
    """Mean and 95% half-width ``1.96 * std / sqrt(n)`` of per-episode accuracies.

    ``std`` is the population standard deviation (``np.std``, ddof=0), as in the usual
    few-shot evaluation code; with hundreds of episodes ddof=1 differs by < 0.2% relative.
    """
    accuracies = np.asarray(accuracies, dtype=np.float64)
    return float(accuracies.mean()), float(CONFIDENCE_Z * accuracies.std() / np.sqrt(len(accuracies)))


def inverse_row_norms(features: torch.Tensor) -> torch.Tensor:
    """``1 / ||row||`` of every feature row (a zero row stays zero): one read-only pass over the set."""
    return 1.0 / torch.linalg.vector_norm(features, dim=1).clamp_min_(NORM_EPS)


def support_grams(features: torch.Tensor, inverse_norms: torch.Tensor, support: np.ndarray) -> torch.Tensor:
    """Cosine Gram matrices ``(E, n, n)`` of the episodes' support rows, in the features' dtype.

    Only the rows the episodes use are normalised, and only through their inner products (the
    product of the raw rows, divided afterwards by both rows' norms): the feature set is never
    normalised or copied (:func:`downstream.gathered_products.cosine_grams` reads the rows in place).
    """
    n = support.shape[1]
    grams = np.empty((len(support), n, n), dtype=features.numpy().dtype)
    return torch.from_numpy(cosine_grams(features.numpy(), inverse_norms.numpy(), support, grams))


def query_logits(
    features: torch.Tensor, inverse_norms: torch.Tensor, support: np.ndarray, query: np.ndarray,
    dual: torch.Tensor, bias: torch.Tensor,
) -> torch.Tensor:
    """Logits ``(E, q, K)`` of the episodes' L2-normalised queries under their fitted classifiers.

    Scored in primal form: each episode's weights ``W^T = A^T X_s`` (A its dual coefficients,
    X_s its normalised support rows) are formed once, so a query costs K inner products instead
    of the dual form's n (5 instead of 25 at 5-way 5-shot).
    """
    coefficients = (dual * inverse_norms[support][:, :, None]).mT.contiguous()  # A^T over the raw rows
    scores = np.empty((len(query), query.shape[1], dual.shape[2]), dtype=features.numpy().dtype)
    primal_scores(features.numpy(), inverse_norms.numpy(), support, query, coefficients.numpy(), scores)
    return torch.from_numpy(scores).add_(bias[:, None, :])


def episode_accuracies(
    features: torch.Tensor, episodes: Episodes, ways: int, C: float, episodes_per_solve: int
) -> np.ndarray:
    """Query accuracy (percent) of each episode, fitting ``episodes_per_solve`` episodes at once.

    float64 features are solved in float64, anything else in float32. Per solve: the support
    Gram matrices, the batched fit, then the queries' logits.
    """
    dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    features = features.to(dtype).contiguous()
    inverse_norms = inverse_row_norms(features)
    accuracies = []
    for start in tqdm(range(0, len(episodes.support), episodes_per_solve), desc="few-shot", unit="solve"):
        part = slice(start, start + episodes_per_solve)
        support, query = episodes.support[part], episodes.query[part]
        gram = support_grams(features, inverse_norms, support)
        dual, bias = fit_kernel_logreg(gram, torch.as_tensor(episodes.support_labels[part]), ways, C)
        predictions = query_logits(features, inverse_norms, support, query, dual, bias).argmax(-1).numpy()
        accuracies.append(100.0 * (predictions == episodes.query_labels[part]).mean(axis=1))
    return np.concatenate(accuracies)


def run(
    features: dict[str, FeatureSet], config: dict, seed: int, context: TaskContext | None = None
) -> dict[str, float]:
    """Accuracy and CI of every ``shots``; episodes saved in ``context.run_dir`` when given."""
    ways = require_positive_int(config, "ways")
    queries = require_positive_int(config, "queries")
    episode_count = require_positive_int(config, "episodes")
    episodes_per_solve = require_positive_int(config, "episodes_per_solve")
    if ways < 2:
        raise UserError(f"config key 'ways' must be at least 2, got {ways}")
    if config["C"] <= 0:
        raise UserError(f"config key 'C' must be positive, got {config['C']}")
    test = features["test"]
    labels, all_shots = test.labels.numpy(), require_positive_int_list(config, "shots")
    if context is None:
        rng = np.random.default_rng(seed)
        sampled = {shots: sample_episodes(labels, ways, shots, queries, episode_count, rng) for shots in all_shots}
    else:
        sampled = shared_episodes(context.run_dir, context.dataset.name, test.indices.numpy(), labels, ways,
                                  all_shots, queries, episode_count, seed)
    metrics = {}
    for shots, episodes in sampled.items():
        accuracy, ci95 = mean_and_ci95(
            episode_accuracies(test.features, episodes, ways, config["C"], episodes_per_solve)
        )
        metrics[f"acc_{ways}way{shots}shot"] = accuracy
        metrics[f"ci95_{ways}way{shots}shot"] = ci95
    return metrics


TASK = Task("fewshot", SCHEMA, ("test",), run, uses_context=True)
