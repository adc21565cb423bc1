"""The deterministic evaluation view of images read through :mod:`resa_core.data.catalog`.

Resize the shorter side to ``resize_size`` (bicubic), centre-crop ``image_size``, normalise:
DINO ``eval_knn.py`` / ``eval_linear.py`` (Resize(256, interpolation=3), CenterCrop(224)) for
ImageNet-sized images; CIFAR-sized images are used at their 32 px as W-MSE / INTL do.
"""

from __future__ import annotations

from torchvision import transforms

from resa_core.data.tensors import NORMALIZATION

STATS = {
    **NORMALIZATION,
    # W-MSE (htdt/self-supervised datasets/cifar10.py and cifar100.py, both use these values)
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


def eval_transform(image_size: int, resize_size: int | None, normalization: str) -> transforms.Compose:
    mean, std = STATS[normalization]
    return transforms.Compose([
        transforms.Resize(resize_size or image_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def train_transform(image_size: int, normalization: str) -> transforms.Compose:
    """RandomResizedCrop + flip: the training view of DINO ``eval_linear.py`` and of SimCLR fine-tuning."""
    mean, std = STATS[normalization]
    return transforms.Compose([
        transforms.RandomResizedCrop(image_size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
