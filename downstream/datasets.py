"""Registry of evaluation datasets: which images form each role, and the config defaults they need.

Roles: ``train`` (the labelled bank of k-NN, the training set of the probes), ``test`` (the
queries; few-shot episodes are drawn from it) and, where the dataset has an official one,
``val`` (logistic-regression transfer picks its L2 strength there; without one the task carves
a validation split out of ``train``, as Ericsson et al. do). A role's images are the split's
fixed class-balanced subset of ``<role>_size`` (``null``: all), the same for every backbone;
``label_subset`` (``1percent`` / ``10percent``) further restricts ``train`` to a low-shot subset
(ImageNet: the shipped SimCLR lists; elsewhere class-balanced fractions).

``fashion_mnist`` returns uint8 arrays (the demo's fast path, resa_core.data.fashion_mnist);
every other dataset comes from :mod:`resa_core.data.catalog` as a ``LabelledImages`` and is
read through a DataLoader with the evaluation transform of :mod:`downstream.transforms`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from downstream.subsets import balanced_indices, fraction_indices, label_subset_percent
from resa_core.data import fashion_mnist
from resa_core.data.catalog import CATALOG, LabelledImages, imagenet_subset_indices, open_dataset
from resa_core.data.fashion_mnist import ImageArray
from resa_core.errors import UserError

ROLES = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one role of a dataset; ``grey`` images give one-channel pixel features.

    ``splits`` maps each role the dataset has to its split name; ``defaults`` overrides the
    common config defaults (image size, normalisation, subset sizes) for this dataset.
    """

    name: str
    load: Callable[[str, dict], ImageArray | LabelledImages]
    grey: bool
    splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    defaults: Mapping = field(default_factory=dict)
    multilabel: bool = False  # labels are class bit masks (catalog.multilabel_targets); only tasks that decode them

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(role for role in ROLES if role in self.splits)


def _load_fashion_mnist(role: str, config: dict) -> ImageArray:
    """Role ``train`` -> train split, ``test`` -> test split, subset by ``<role>_size``."""
    data = fashion_mnist.load_subset(role, config[f"{role}_size"], config["subset_seed"], root=config["data_root"])
    percent = label_subset_percent(config["label_subset"]) if role == "train" else None
    if percent:
        keep = fraction_indices(data.labels, percent, config["subset_seed"])
        data = ImageArray(data.images[keep], data.labels[keep], data.indices[keep])
    return data


def _catalog_loader(name: str, splits: Mapping[str, str]) -> Callable[[str, dict], LabelledImages]:
    def load(role: str, config: dict) -> LabelledImages:
        if role not in splits:
            raise UserError(f"dataset '{name}' has no '{role}' split (roles: {', '.join(splits)})")
        data = open_dataset(name, splits[role], config["data_root"])
        size = config.get(f"{role}_size")
        data = data.subset(balanced_indices(data.labels, size, config["subset_seed"]))
        percent = label_subset_percent(config["label_subset"]) if role == "train" else None
        if percent and name in ("imagenet", "imagenet100"):
            data = data.subset(imagenet_subset_indices(data, percent, name))
        elif percent:
            data = data.subset(fraction_indices(data.labels, percent, config["subset_seed"]))
        return data

    return load


_FULL = {"train_size": None, "test_size": None}
_IMAGENET_VIEW = {**_FULL, "image_size": 224, "resize_size": 256, "normalization": "imagenet"}  # DINO eval
_CIFAR_VIEW = {**_FULL, "image_size": 32, "normalization": "cifar"}  # W-MSE / INTL evaluate CIFAR at 32 px
_SPLITS = {
    "imagenet": {"train": "train", "test": "val"},
    "imagenet100": {"train": "train", "test": "val"},
    "pets": {"train": "trainval", "test": "test"},
    "flowers102": {"train": "train", "val": "val", "test": "test"},
    "aircraft": {"train": "train", "val": "val", "test": "test"},
    "dtd": {"train": "train", "val": "val", "test": "test"},
    "fc100": {"train": "train", "val": "val", "test": "test"},
    "voc2007": {"train": "train", "val": "val", "test": "test"},  # multi-label (bit-mask labels): logreg-transfer
    "plant_disease": {"test": "test"},
    "cub200_novel": {"test": "test"},  # cross-domain few-shot: the 50 novel classes, all their images
}
_CIFAR_NAMES = ("cifar10", "cifar100", "cifar100_coarse", "fc100")
MULTILABEL_NAMES = ("voc2007",)


def _catalog_spec(name: str) -> DatasetSpec:
    splits = _SPLITS.get(name, {"train": "train", "test": "test"})
    defaults = _CIFAR_VIEW if name in _CIFAR_NAMES else _IMAGENET_VIEW
    return DatasetSpec(name, _catalog_loader(name, splits), grey=False, splits=splits, defaults=defaults,
                       multilabel=name in MULTILABEL_NAMES)


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec("fashion_mnist", _load_fashion_mnist, grey=True),
    **{name: _catalog_spec(name) for name in sorted(CATALOG) if name != "fashion_mnist"},
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}'; registered datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
