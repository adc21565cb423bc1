"""Pretraining datasets by name (labels feed monitoring only).

``fashion_mnist`` is also available as uint8 arrays for the in-memory batched augmentation
path (:func:`load_train_set`, the demo's). Every dataset opens through
``resa_core.data.catalog`` as PIL images for the DataLoader path (:func:`open_split`):
CIFAR-10/100, CIFAR-100-LT (:mod:`pretrain.data.cifar_lt`), ImageNet, ImageNet-100 (the
shipped Tian et al. 2020 class list), any ImageFolder, Fashion-MNIST. A missing root is the
catalog's one-line error naming the expected layout.

``data.long_tail_ratio`` > 0 makes any training split long-tailed by the CIFAR-100-LT construction
(:func:`pretrain.data.cifar_lt.long_tail_indices`, Cao et al. 2019): first the fixed stratified
``train_size`` subset (``n`` images per class), then class ``c`` keeps ``int(n * ratio ** (c / (C-1)))``
of them. Fashion-MNIST with ``train_size`` 5000 and ratio 0.05 has CIFAR-100-LT's 500 images in its
largest class and the 1/20 factor of ReSA Appendix C.3: 500, 358, 256, 184, 132, 94, 67, 48, 34, 25 (1,698 images).
"""

from __future__ import annotations

import numpy as np

from pretrain.data.cifar_lt import long_tail_indices
from resa_core.data import fashion_mnist
from resa_core.data.catalog import LabelledImages, open_dataset
from resa_core.data.fashion_mnist import ImageArray, stratified_subset
from resa_core.errors import UserError

DATASETS = ("fashion_mnist", "cifar10", "cifar100", "cifar100_lt", "imagenet", "imagenet100", "imagefolder")
IN_MEMORY = ("fashion_mnist",)
HELDOUT_SPLIT = {"imagenet": "val", "imagenet100": "val", "imagefolder": "val"}  # others: "test"


def _check(name: str) -> None:
    if name not in DATASETS:
        raise UserError(f"data.name '{name}' unknown; available datasets: {', '.join(DATASETS)}")


def _long_tail_ratio(data_cfg: dict) -> float:
    ratio = float(data_cfg.get("long_tail_ratio", 0.0))
    if ratio and data_cfg["name"] == "cifar100_lt":
        raise UserError("data.long_tail_ratio: cifar100_lt is long-tailed already (factor 1/20); use cifar100")
    return ratio


def load_train_set(data_cfg: dict) -> ImageArray:
    """The fixed stratified training subset of an in-memory dataset (Fashion-MNIST), long-tailed on request."""
    _check(data_cfg["name"])
    if data_cfg["name"] not in IN_MEMORY:
        raise UserError(f"data.name '{data_cfg['name']}' is file-backed; it is read through the DataLoader path")
    data = fashion_mnist.load_subset("train", data_cfg["train_size"], data_cfg["subset_seed"], data_cfg["root"])
    ratio = _long_tail_ratio(data_cfg)
    if not ratio:
        return data
    keep = long_tail_indices(data.labels, ratio)
    return ImageArray(data.images[keep], data.labels[keep], data.indices[keep])


def _subset(data: LabelledImages, size: int, seed: int) -> LabelledImages:
    if not size or size >= len(data):
        return data
    positions = np.arange(len(data))
    return data.subset(stratified_subset(ImageArray(positions, data.labels, positions), size, seed).indices)


def open_split(data_cfg: dict, split: str, size: int | None = None, seed: int | None = None) -> LabelledImages:
    """Split ``split`` (``train`` or ``heldout``) as PIL images, restricted to a stratified subset."""
    name = data_cfg["name"]
    _check(name)
    base = "cifar100" if name == "cifar100_lt" else name
    real_split = "train" if split == "train" else HELDOUT_SPLIT.get(name, "test")
    data = open_dataset(base, real_split, data_cfg["root"])
    if name == "cifar100_lt" and split == "train":
        data = data.subset(long_tail_indices(data.labels))
    size = data_cfg["train_size"] if size is None else size
    data = _subset(data, size, data_cfg["subset_seed"] if seed is None else seed)
    ratio = _long_tail_ratio(data_cfg)
    return data.subset(long_tail_indices(data.labels, ratio)) if ratio and split == "train" else data
