"""Few-shot solver speed: the batched kernel solver against a per-episode scikit-learn loop.

2000 episodes each of 5-way 1-shot and 5-way 5-shot (15 queries per class) on 2048-d float32
features, both sides minimising ``LogisticRegression(C=1.0, max_iter=1000)``'s objective on
L2-normalised features, one thread each (torch and BLAS pinned by :mod:`benchmarks.harness`).
Prints, per shot count, the median speed-up over alternating repeats (goal: at least 20x) and
the difference of the mean accuracies over the same episodes (goal: within 0.5 points).
The features are synthetic but class-structured (100 classes x 100 samples: a random class mean
of norm ~0.15 plus Gaussian noise of norm ~1, seeded), so that accuracies are neither 20% nor 100%.

    .venv/bin/python -m benchmarks.fewshot [--episodes 2000] [--dim 2048] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from benchmarks.harness import append_result, compare, print_conditions
from downstream.episodes import Episodes, sample_episodes
from downstream.tasks.fewshot import episode_accuracies

SHOTS = (1, 5)  # DSA Table VI: 5-way 1-shot and 5-shot
WAYS, QUERIES = 5, 15
WARM_UP_EPISODES = 50  # warm-up calls on the first 50 episodes: 2000 scikit-learn fits take ~20 s


def class_structured_features(classes: int, per_class: int, dim: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=generator) * (0.15 / np.sqrt(dim))  # mean norm ~0.15, noise ~1
    labels = np.repeat(np.arange(classes), per_class)
    features = means[labels] + torch.randn(len(labels), dim, generator=generator) / np.sqrt(dim)
    return features, labels


def sklearn_loop(features: torch.Tensor, episodes) -> np.ndarray:
    """The reference: one ``LogisticRegression`` fit per episode on the L2-normalised gathered rows."""
    accuracies = []
    for support, support_labels, query, query_labels in zip(
        episodes.support, episodes.support_labels, episodes.query, episodes.query_labels, strict=True
    ):
        support_x = F.normalize(features[support], dim=1).numpy()
        query_x = F.normalize(features[query], dim=1).numpy()
        classifier = LogisticRegression(C=1.0, max_iter=1000).fit(support_x, support_labels)
        accuracies.append(100.0 * np.mean(classifier.predict(query_x) == query_labels))
    return np.array(accuracies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)  # DSA Table VI
    parser.add_argument("--dim", type=int, default=2048)  # ResNet-50 encoding
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print_conditions(args.threads)
    features, labels = class_structured_features(100, 100, args.dim, seed=0)
    for shots in SHOTS:
        episodes = sample_episodes(labels, WAYS, shots, QUERIES, args.episodes, np.random.default_rng(shots))
        last = {}
        warm_up = Episodes(*(getattr(episodes, field)[:WARM_UP_EPISODES] for field in
                             ("support", "support_labels", "query", "query_labels")))
        params = {"episodes": args.episodes, "ways": WAYS, "shots": shots, "queries": QUERIES, "dim": args.dim}
        result = compare(
            "fewshot", f"{WAYS}-way {shots}-shot, {args.episodes} episodes, dim {args.dim}",
            lambda episodes=episodes, last=last: last.update(ours=episode_accuracies(
                features, episodes, WAYS, 1.0, args.episodes)),
            lambda episodes=episodes, last=last: last.update(reference=sklearn_loop(features, episodes)),
            threads=args.threads, repeats=args.repeats, ratio="reference/ours", goal=">= 20x",
            params=params, record=False,
            warm_ups=(lambda warm_up=warm_up: episode_accuracies(features, warm_up, WAYS, 1.0, WARM_UP_EPISODES),
                      lambda warm_up=warm_up: sklearn_loop(features, warm_up)),
        )
        difference = last["ours"].mean() - last["reference"].mean()
        differing = int(np.sum(np.abs(last["ours"] - last["reference"]) > 1e-9))
        print(f"  accuracy: ours {last['ours'].mean():.2f}, scikit-learn {last['reference'].mean():.2f}, "
              f"difference {difference:+.3f} points (goal within 0.5), {differing} episodes differ")
        append_result("fewshot", {**result, "accuracy_difference_points": difference,
                                  "episodes_differing": differing})


if __name__ == "__main__":
    main()
