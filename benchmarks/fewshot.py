"""Few-shot solver speed: the batched torch solver against a per-episode scikit-learn loop.

2000 episodes of 5-way 5-shot (15 queries per class) on 2048-d features, both minimising
``LogisticRegression(C=1.0, max_iter=1000)``'s objective on L2-normalised features. Prints the
wall times, their ratio (goal: at least 20x) and the difference of the mean accuracies.
The features are synthetic but class-structured (100 classes x 100 samples: a random class mean
of norm ~0.15 plus Gaussian noise of norm ~1, seeded), so that accuracies are neither 20% nor 100%.

    .venv/bin/python -m benchmarks.fewshot [--episodes 2000] [--dim 2048] [--shots 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from downstream.episodes import sample_episodes
from downstream.tasks.fewshot import episode_accuracies


def class_structured_features(classes: int, per_class: int, dim: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=generator) * (0.15 / np.sqrt(dim))  # mean norm ~0.15, noise ~1
    labels = np.repeat(np.arange(classes), per_class)
    features = means[labels] + torch.randn(len(labels), dim, generator=generator) / np.sqrt(dim)
    return features, labels


def sklearn_loop(features: torch.Tensor, episodes) -> np.ndarray:
    normalised = F.normalize(features.double(), dim=1).numpy()
    accuracies = []
    for support, support_labels, query, query_labels in zip(
        episodes.support, episodes.support_labels, episodes.query, episodes.query_labels, strict=True
    ):
        classifier = LogisticRegression(C=1.0, max_iter=1000).fit(normalised[support], support_labels)
        accuracies.append(100.0 * np.mean(classifier.predict(normalised[query]) == query_labels))
    return np.array(accuracies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--episodes-per-solve", type=int, default=200)
    args = parser.parse_args()
    features, labels = class_structured_features(100, 100, args.dim, seed=0)
    episodes = sample_episodes(labels, 5, args.shots, 15, args.episodes, np.random.default_rng(0))
    print(f"{args.episodes} episodes, 5-way {args.shots}-shot, 15 queries/class, dim {args.dim}, "
          f"threads {torch.get_num_threads()}")
    start = time.perf_counter()
    ours = episode_accuracies(features, episodes, 5, 1.0, args.episodes_per_solve)
    ours_time = time.perf_counter() - start
    start = time.perf_counter()
    reference = sklearn_loop(features, episodes)
    reference_time = time.perf_counter() - start
    print(f"batched solver {ours_time:.2f} s (acc {ours.mean():.2f}), sklearn loop {reference_time:.2f} s "
          f"(acc {reference.mean():.2f})")
    print(f"speed ratio {reference_time / ours_time:.1f}x (goal >= 20x), accuracy difference "
          f"{ours.mean() - reference.mean():+.3f} points, episodes that differ "
          f"{int(np.sum(np.abs(ours - reference) > 1e-9))}")


if __name__ == "__main__":
    main()
