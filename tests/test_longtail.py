"""Long-tailed pretraining data, per-bucket k-NN accuracy, and the prior as part of a run's identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import repo_path

from downstream.features import FeatureSet
from downstream.frequency_buckets import class_buckets
from downstream.tasks.knn import SCHEMA, run
from pretrain.checkpoint import check_compatible
from pretrain.config import resolve
from pretrain.data.datasets import load_train_set
from resa_core.errors import UserError

DEMO = repo_path("configs/pretrain/demo_fmnist_resa.yaml")


def test_long_tailed_fashion_mnist_is_the_cifar100_lt_profile_of_the_balanced_subset() -> None:
    cfg = {"name": "fashion_mnist", "train_size": 1000, "subset_seed": 0, "root": None}
    balanced = load_train_set(cfg)
    tail = load_train_set({**cfg, "long_tail_ratio": 0.05})
    # 100 per class -> int(100 * 0.05 ** (c / 9)) (Cao et al. 2019 / ReSA C.3 construction)
    assert np.bincount(tail.labels).tolist() == [100, 71, 51, 36, 26, 18, 13, 9, 6, 5]
    assert set(tail.indices) <= set(balanced.indices)
    np.testing.assert_array_equal(tail.images, balanced.images[np.isin(balanced.indices, tail.indices)])


def _features(labels: torch.Tensor, separable: torch.Tensor) -> torch.Tensor:
    """One-hot class features where ``separable[label]``, noise elsewhere (so only those classes are found)."""
    g = torch.Generator().manual_seed(0)
    onehot = torch.nn.functional.one_hot(labels, 10).double() * 10
    noise = torch.randn(len(labels), 10, generator=g, dtype=torch.float64)
    return torch.where(separable[labels][:, None], onehot + 0.01 * noise, noise)


def test_knn_buckets_report_top1_per_frequency_third() -> None:
    assert class_buckets(10).tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]  # 4 many, 3 medium, 3 few
    train_labels, test_labels = torch.arange(10).repeat(20), torch.arange(10).repeat(6)
    separable = torch.tensor([True] * 4 + [False] * 6)  # the many bucket is perfectly separable
    features = {"train": FeatureSet(_features(train_labels, separable), train_labels, torch.arange(200)),
                "test": FeatureSet(_features(test_labels, separable), test_labels, torch.arange(60))}
    metrics = run(features, {**SCHEMA, "ks": [5], "buckets": "long_tail"}, seed=0)
    assert metrics["top1_k5_many"] == 100.0 and metrics["top1_k5_few"] < 100.0
    sizes = {"many": 24, "medium": 18, "few": 18}
    overall = sum(metrics[f"top1_k5_{b}"] * n for b, n in sizes.items()) / 60
    assert abs(overall - metrics["top1_k5"]) < 1e-9
    assert "top5_k5_many" not in metrics and "top1_k5_many" not in run(features, {**SCHEMA, "ks": [5]}, seed=0)


def test_prior_keys_are_validated_and_resume_with_another_prior_or_profile_is_refused(tmp_path) -> None:
    with pytest.raises(UserError, match="loss.prior"):
        resolve(DEMO, ["loss.prior=zipf"])
    with pytest.raises(UserError, match="long_tail_ratio"):
        resolve(DEMO, ["data.long_tail_ratio=2"])
    uniform = resolve(DEMO, ["loss.prior=uniform"])
    state = {"arch": uniform["arch"], "method": uniform["method"], "config": uniform}
    check_compatible(state, resolve(DEMO, ["loss.prior_tau=0.5"]), tmp_path)  # tau is unused by uniform
    for override, key in (("loss.prior=power_law", "loss.prior"), ("data.long_tail_ratio=0.05", "long_tail_ratio")):
        with pytest.raises(UserError, match=key):
            check_compatible(state, resolve(DEMO, [override]), tmp_path)
    power = resolve(DEMO, ["loss.prior=power_law"])
    with pytest.raises(UserError, match="prior_tau"):
        check_compatible({**state, "config": power}, resolve(DEMO, ["loss.prior=power_law", "loss.prior_tau=0.5"]),
                         tmp_path)
