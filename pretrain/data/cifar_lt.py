"""CIFAR-100-LT with imbalance factor 1/20 (ReSA paper Appendix C.3): 15,907 training images.

The paper follows https://huggingface.co/datasets/tomas-gajarsky/cifar100-lt, which builds the
long-tailed split as Cao et al. (2019, LDAM-DRW, ``imbalance_cifar.py``): class c keeps
``int(500 * factor ** (c / 99))`` images, chosen by shuffling each class's indices in class
order with NumPy's legacy generator seeded 0 and keeping the first ones. With factor 1/20 the
counts sum to 15,907, the number the paper states.
"""

from __future__ import annotations

import numpy as np

IMBALANCE_FACTOR = 1 / 20  # paper C.3
SEED = 0  # LDAM-DRW's default rand_number


def images_per_class(num_classes: int = 100, max_images: int = 500, factor: float = IMBALANCE_FACTOR) -> list[int]:
    return [int(max_images * factor ** (c / (num_classes - 1))) for c in range(num_classes)]


def long_tail_indices(labels: np.ndarray, factor: float = IMBALANCE_FACTOR, seed: int = SEED) -> np.ndarray:
    """Positions of the long-tailed subset in the full CIFAR-100 training split, sorted."""
    classes = np.unique(labels)
    counts = images_per_class(len(classes), int(np.bincount(labels).max()), factor)
    rng = np.random.RandomState(seed)
    keep = []
    for cls, count in zip(classes, counts, strict=True):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        keep.append(idx[:count])
    return np.sort(np.concatenate(keep))
