"""Turning uint8 image arrays into model inputs, identically in pretraining and evaluation.

Grey images are replicated to three channels so that the encoders keep the standard
3-channel stem that Detectron2 and MMSegmentation expect. Normalisation uses per-dataset
statistics (Fashion-MNIST: mean 0.2860, std 0.3530, computed over its 60k training images).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

NORMALIZATION = {
    "fashion_mnist": ((0.2860, 0.2860, 0.2860), (0.3530, 0.3530, 0.3530)),
    # CIFAR training-set statistics, as solo-learn's CIFAR pretraining transforms use them.
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    # torchvision's ImageNet statistics, used by every ImageNet-pretrained model.
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def to_float_rgb(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W)`` or ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` in [0, 1]."""
    tensor = torch.as_tensor(np.asarray(images))
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1).expand(-1, 3, -1, -1)
    elif tensor.ndim == 4 and tensor.shape[-1] == 3:
        tensor = tensor.permute(0, 3, 1, 2)
    return tensor.float().div(255.0).contiguous()


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of a float ``(N, 3, H, W)`` batch to ``size x size``."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def normalize(images: torch.Tensor, stats: str) -> torch.Tensor:
    mean, std = NORMALIZATION[stats]
    mean_t = torch.tensor(mean, dtype=images.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean_t) / std_t


def eval_inputs(images: np.ndarray, size: int, stats: str) -> torch.Tensor:
    """The deterministic evaluation view: resize + normalise (no crop, no flip)."""
    return normalize(resize(to_float_rgb(images), size), stats)
