"""Registry of evaluation datasets: which images form the labelled bank and the queries.

Each dataset names two roles: ``train`` (the labelled bank of k-NN, the training set of the
linear probe) and ``test`` (the queries; few-shot episodes are drawn from it). Subsets are the
fixed stratified ones of :func:`resa_core.data.fashion_mnist.load_subset`, so evaluation sees
the same images whichever backbone is evaluated (and the same the demo pretrains on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from resa_core.data import fashion_mnist
from resa_core.data.fashion_mnist import ImageArray
from resa_core.errors import UserError

ROLES = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one role of a dataset; ``grey`` images give one-channel pixel features."""

    name: str
    load: Callable[[str, dict], ImageArray]
    grey: bool


def _load_fashion_mnist(role: str, config: dict) -> ImageArray:
    """Role ``train`` -> train split, ``test`` -> test split, subset by ``<role>_size``."""
    return fashion_mnist.load_subset(
        role, config[f"{role}_size"], config["subset_seed"], root=config["data_root"]
    )


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec("fashion_mnist", _load_fashion_mnist, grey=True),
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}'; registered datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
