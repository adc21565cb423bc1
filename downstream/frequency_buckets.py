"""Many / medium / few class-frequency buckets for a long-tailed pretraining set (k-NN ``buckets=long_tail``).

Long-tailed recognition reports accuracy per frequency bucket (Liu et al. 2019, OLTR: many > 100,
medium 20-100, few < 20 training images per class on ImageNet-LT / CIFAR-100-LT). Those absolute
thresholds do not fit 10 classes of a subset, so buckets here are *thirds by training-frequency
rank*: the class of rank ``r`` (0 = most frequent) of ``C`` falls in bucket ``floor(3 r / C)``; for
``C = 10``: 4 many, 3 medium, 3 few classes. The long-tailed profile is the CIFAR-100-LT
construction (:mod:`pretrain.data.cifar_lt`, Cao et al. 2019): class ``c`` keeps
``int(n * ratio ** (c / (C-1)))`` images, a decreasing function of the class index, so the rank of
class ``c`` is ``c`` whatever the ratio: Fashion-MNIST classes 0-3 many, 4-6 medium, 7-9 few.
"""

from __future__ import annotations

import torch

BUCKETS = ("many", "medium", "few")


def class_buckets(num_classes: int) -> torch.Tensor:
    """Bucket index (0 many, 1 medium, 2 few) of each class, classes ranked by index (the LT profile)."""
    return torch.arange(num_classes) * len(BUCKETS) // num_classes
