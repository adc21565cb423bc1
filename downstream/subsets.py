"""Deterministic class-balanced subsets of a labelled split, chosen from the labels alone.

Two uses: the fixed evaluation subsets (``train_size`` / ``test_size``: the same images for every
backbone) and the low-shot label subsets (``label_subset``: ImageNet's SimCLR 1% / 10% lists,
class-balanced fractions elsewhere, as DSA Section IV-D samples them "in a class-balanced way").
"""

from __future__ import annotations

import numpy as np

from resa_core.errors import UserError

LABEL_SUBSETS = {"1percent": 1, "10percent": 10}


def balanced_indices(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Sorted positions of ``size`` samples spread evenly over classes (``None``: all positions).

    Same draw as :func:`resa_core.data.fashion_mnist.stratified_subset` (one
    ``default_rng(seed).choice`` per class in class order, remainder to the first classes).
    """
    labels = np.asarray(labels)
    if not size or size >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    if size < len(classes):
        raise UserError(f"subset size {size} is smaller than the number of classes ({len(classes)})")
    rng = np.random.default_rng(seed)
    per_class = np.full(len(classes), size // len(classes))
    per_class[: size % len(classes)] += 1
    available = np.array([np.sum(labels == cls) for cls in classes])
    if np.any(per_class > available):  # unbalanced data: take what small classes have
        per_class = np.minimum(per_class, available)
    chosen = [
        rng.choice(np.flatnonzero(labels == cls), count, replace=False)
        for cls, count in zip(classes, per_class, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def fraction_indices(labels: np.ndarray, percent: int, seed: int) -> np.ndarray:
    """Sorted positions of ``percent``% of every class (at least one image each), drawn with ``seed``."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        count = max(1, round(len(members) * percent / 100))
        chosen.append(rng.choice(members, count, replace=False))
    return np.sort(np.concatenate(chosen))


def label_subset_percent(name: str | None) -> int | None:
    """``null`` -> ``None``; ``1percent`` / ``10percent`` -> 1 / 10; anything else is an error."""
    if name is None:
        return None
    if name not in LABEL_SUBSETS:
        raise UserError(f"config key 'label_subset' must be null or one of {sorted(LABEL_SUBSETS)}, got {name!r}")
    return LABEL_SUBSETS[name]
