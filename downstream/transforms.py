"""The deterministic evaluation view of images read through :mod:`resa_core.data.catalog`.

Resize the shorter side to ``resize_size`` (``resize_interpolation``, bicubic by default),
centre-crop ``image_size``, normalise: DINO ``eval_knn.py`` / ``eval_linear.py`` (Resize(256,
interpolation=3), CenterCrop(224)) for ImageNet-sized images; CIFAR-sized images are used at their
32 px as W-MSE / INTL do. Tasks whose reference protocol differs set their own view
(``Task.image_view``): logistic-regression transfer resizes to 224 bicubic (Ericsson et al.),
the ImageNet linear probe and low-shot fine-tuning resize to 256 bilinear (the ReSA authors'
``eval_linear.py``).
"""

from __future__ import annotations

from torchvision import transforms

from resa_core.data.tensors import NORMALIZATION

INTERPOLATIONS = {
    "bicubic": transforms.InterpolationMode.BICUBIC,  # DINO eval_knn.py (interpolation=3), Ericsson et al. linear.py
    "bilinear": transforms.InterpolationMode.BILINEAR,  # torchvision's default: ReSA eval_linear.py Resize(256)
}
STATS = {
    **NORMALIZATION,
    # W-MSE (htdt/self-supervised datasets/cifar10.py and cifar100.py, both use these values)
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


def eval_transform(image_size: int, resize_size: int | None, normalization: str,
                   interpolation: str = "bicubic") -> transforms.Compose:
    mean, std = STATS[normalization]
    return transforms.Compose([
        transforms.Resize(resize_size or image_size, interpolation=INTERPOLATIONS[interpolation]),
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
