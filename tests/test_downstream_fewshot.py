"""Few-shot: episode sampling, the CI formula, and the batched solver against scikit-learn."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from downstream.backbones import resolve_backbone
from downstream.config import resolve_config
from downstream.datasets import dataset_spec
from downstream.episodes import sample_episodes
from downstream.features import cached_features
from downstream.logreg import fit_batched_logreg, logreg_objective
from downstream.tasks.fewshot import SCHEMA, episode_accuracies, mean_and_ci95
from resa_core.data.fashion_mnist import load_subset
from resa_core.data.tensors import eval_inputs


@pytest.fixture(scope="module")
def pixels():
    """Real Fashion-MNIST test images as L2-normalised 32x32 grey pixels, with labels."""
    data = load_subset("test", 1000, 0)
    features = eval_inputs(data.images, 32, "fashion_mnist")[:, 0].flatten(1)
    return F.normalize(features.double(), dim=1), data.labels


def same_episodes(first, second) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(vars(first).values(), vars(second).values(), strict=True))


def test_ci95_is_population_std_formula():
    accuracies = np.array([40.0, 60.0, 80.0, 100.0])
    mean, ci95 = mean_and_ci95(accuracies)
    assert mean == 70.0
    assert ci95 == pytest.approx(1.96 * np.sqrt(np.mean((accuracies - 70.0) ** 2)) / 2.0)


def test_episodes_are_valid_and_follow_the_seeded_sampling_contract(pixels):
    _, labels = pixels
    episodes = sample_episodes(labels, 5, 5, 15, 50, np.random.default_rng(3))
    assert episodes.support.shape == (50, 25) and episodes.query.shape == (50, 75)
    np.testing.assert_array_equal(episodes.support_labels[7], np.repeat(np.arange(5), 5))  # class-major
    np.testing.assert_array_equal(episodes.query_labels[7], np.repeat(np.arange(5), 15))
    for support, support_labels, query, query_labels in zip(
        episodes.support, episodes.support_labels, episodes.query, episodes.query_labels, strict=True
    ):
        assert len(set(support) | set(query)) == 25 + 75  # no image twice in an episode
        assert len(np.unique(labels[support])) == 5
        for local in range(5):  # one real class behind each local label, shared by support and query
            real = np.unique(np.concatenate([labels[support[support_labels == local]],
                                             labels[query[query_labels == local]]]))
            assert len(real) == 1
    assert len(np.unique(labels[episodes.support])) == 10  # 50 episodes of 5 classes reach all 10
    # the documented contract, recomputed: per episode 5 distinct classes from the generator, then
    # shots + queries distinct members of each, the first `shots` of them the support
    rng = np.random.default_rng(3)
    for episode in range(3):
        for way, cls in enumerate(rng.choice(np.unique(labels), 5, replace=False)):
            chosen = rng.choice(np.flatnonzero(labels == cls), 20, replace=False)
            np.testing.assert_array_equal(episodes.support[episode, way * 5:(way + 1) * 5], chosen[:5])
            np.testing.assert_array_equal(episodes.query[episode, way * 15:(way + 1) * 15], chosen[5:])
    other = sample_episodes(labels, 5, 5, 15, 50, np.random.default_rng(4))
    assert not np.array_equal(other.support, episodes.support) and not np.array_equal(other.query, episodes.query)


def test_episodes_identical_for_two_backbones(tmp_path):
    """Episodes read only the labels: both backbones' caches keep the dataset's labels in its order."""
    config = resolve_config(SCHEMA, overrides=["test_size=200"])
    spec = dataset_spec("fashion_mnist")
    expected_labels = np.asarray(spec.load("test", config).labels)
    sampled, features = [], []
    for weights in ("pixels", "random:resnet18"):
        backbone = resolve_backbone(weights, 0, spec.grey)
        test = cached_features(tmp_path, backbone.sha256, backbone.encoder, "fashion_mnist", "test", config,
                               lambda: spec.load("test", config))
        np.testing.assert_array_equal(test.labels.numpy(), expected_labels)
        features.append(test.features)
        sampled.append(sample_episodes(test.labels.numpy(), 5, 1, 15, 30, np.random.default_rng(0)))
    assert features[0].shape != features[1].shape or not torch.equal(*features)  # two different backbones
    assert same_episodes(*sampled)
    assert same_episodes(sampled[0], sample_episodes(expected_labels, 5, 1, 15, 30, np.random.default_rng(0)))


def test_batched_solver_matches_sklearn_objective_and_weights(pixels):
    features, labels = pixels
    episodes = sample_episodes(labels, 5, 5, 15, 2, np.random.default_rng(0))
    support = features[episodes.support]
    weights, bias = fit_batched_logreg(support, torch.as_tensor(episodes.support_labels), 5, C=1.0)
    for episode in range(2):
        reference = LogisticRegression(C=1.0, max_iter=1000, tol=1e-10).fit(
            support[episode].numpy(), episodes.support_labels[episode]
        )
        ref_weights = torch.as_tensor(reference.coef_.T.copy())
        ref_bias = torch.as_tensor(reference.intercept_.copy())
        assert torch.allclose(weights[episode], ref_weights, atol=1e-5)
        # the intercept is unpenalised: only its differences between classes are determined
        assert torch.allclose(bias[episode] - bias[episode].mean(), ref_bias - ref_bias.mean(), atol=1e-5)
        labels_e = torch.as_tensor(episodes.support_labels[episode:episode + 1])
        ours = logreg_objective(weights[episode:episode + 1], bias[episode:episode + 1],
                                support[episode:episode + 1], labels_e, 1.0)
        theirs = logreg_objective(
            ref_weights[None], ref_bias[None], support[episode:episode + 1], labels_e, 1.0
        )
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-9)


@pytest.mark.parametrize("shots", [1, 5])
def test_batched_solver_accuracy_matches_sklearn_over_200_episodes(pixels, shots):
    features, labels = pixels
    episodes = sample_episodes(labels, 5, shots, 15, 200, np.random.default_rng(shots))
    ours = episode_accuracies(features.float(), episodes, 5, C=1.0, episodes_per_solve=64)  # the float32 path
    reference = []
    for support, support_labels, query, query_labels in zip(
        episodes.support, episodes.support_labels, episodes.query, episodes.query_labels, strict=True
    ):
        classifier = LogisticRegression(C=1.0, max_iter=1000).fit(features[support].numpy(), support_labels)
        reference.append(100.0 * np.mean(classifier.predict(features[query].numpy()) == query_labels))
    assert abs(ours.mean() - np.mean(reference)) < 0.5
