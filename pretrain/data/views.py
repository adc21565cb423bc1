"""Batched weak and standard augmentations whose randomness derives from (seed, epoch, index).

The parameters follow the torchvision recipe the ReSA authors use (``src/transform.py`` of
winci-ai/resa, itself solo-learn's ``ImageNetTransform``): the weak view is
RandomResizedCrop + HorizontalFlip (paper Section 4.3); the standard view adds ColorJitter
(p 0.8), RandomGrayscale (p 0.2), GaussianBlur and Solarization with per-dataset
probabilities. Each sample's parameters come from a generator seeded by
``(seed, epoch, sample index, view)``, so a resumed run or a different number of data-loader
workers sees exactly the same views. Operations run on whole batches of float tensors;
ColorJitter applies brightness, contrast, saturation, hue in this fixed order (torchvision
permutes it), and saturation/hue are skipped for grey images, on which they are the identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.ops import roi_align

# ITU-R 601 luma, as torchvision's rgb_to_grayscale.
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


@dataclass(frozen=True)
class ViewParams:
    crop_size: int
    min_scale: float = 0.2
    max_scale: float = 1.0
    flip_prob: float = 0.5
    color_jitter_prob: float = 0.0
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_prob: float = 0.0
    blur_prob: float = 0.0
    solarization_prob: float = 0.0


def weak_view(crop_size: int, min_scale: float, max_scale: float) -> ViewParams:
    """ReSA's weak augmentation: resized crop and flip only."""
    return ViewParams(crop_size=crop_size, min_scale=min_scale, max_scale=max_scale)


def sample_crop_box(rng: np.random.Generator, height: int, width: int, scale: tuple[float, float],
                    ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[float, float, float, float]:
    """torchvision RandomResizedCrop.get_params: 10 tries, then a central crop."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, left + w, top + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    top, left = (height - h) // 2, (width - w) // 2
    return left, top, left + w, top + h


def draw_view_params(params: ViewParams, rng: np.random.Generator, height: int, width: int) -> dict:
    """One sample's augmentation parameters, shared by the batched tensor path and the PIL path."""
    draw = {"box": sample_crop_box(rng, height, width, (params.min_scale, params.max_scale))}
    draw["jitter"] = rng.random() < params.color_jitter_prob
    draw["factors"] = (
        rng.uniform(max(0.0, 1 - params.brightness), 1 + params.brightness),
        rng.uniform(max(0.0, 1 - params.contrast), 1 + params.contrast),
        rng.uniform(max(0.0, 1 - params.saturation), 1 + params.saturation),
        rng.uniform(-params.hue, params.hue),
    )
    draw["gray"] = rng.random() < params.grayscale_prob
    draw["blur_sigma"] = rng.uniform(0.1, 2.0) if rng.random() < params.blur_prob else 0.0
    draw["solarize"] = rng.random() < params.solarization_prob
    draw["flip"] = rng.random() < params.flip_prob
    return draw


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor * images + (1 - factor) * other).clamp_(0, 1)


def _luma(images: torch.Tensor) -> torch.Tensor:
    return (images * _LUMA).sum(dim=1, keepdim=True)


def _color_jitter(images: torch.Tensor, draws: list[dict], grey_input: bool) -> torch.Tensor:
    active = torch.tensor([d["jitter"] for d in draws]).view(-1, 1, 1, 1)
    if not active.any():
        return images
    factors = torch.tensor([d["factors"] for d in draws], dtype=images.dtype)
    ones = torch.ones(len(draws), 1, 1, 1, dtype=images.dtype)
    pick = lambda column: torch.where(active, factors[:, column].view(-1, 1, 1, 1), ones)  # noqa: E731
    out = _blend(images, torch.zeros_like(images), pick(0))
    out = _blend(out, _luma(out).mean(dim=(2, 3), keepdim=True), pick(1))
    if grey_input:
        return out
    out = _blend(out, _luma(out), pick(2))
    for i, draw in enumerate(draws):
        if draw["jitter"] and draw["factors"][3] != 0:
            out[i] = TF.adjust_hue(out[i], draw["factors"][3])
    return out


def augment_batch(images: torch.Tensor, indices: np.ndarray, params: ViewParams, seed: int, epoch: int,
                  view: int) -> torch.Tensor:
    """Augment a float ``(N, 3, H, W)`` batch in [0, 1]; sample i's randomness is keyed by indices[i]."""
    height, width = images.shape[-2:]
    draws = [draw_view_params(params, np.random.default_rng((seed, epoch, int(idx), view)), height, width)
             for idx in indices]
    boxes = torch.tensor([[i, *d["box"]] for i, d in enumerate(draws)], dtype=images.dtype)
    out = roi_align(images, boxes, output_size=params.crop_size, spatial_scale=1.0, sampling_ratio=2,
                    aligned=True).clamp_(0, 1)
    grey_input = bool(torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2]))
    out = _color_jitter(out, draws, grey_input)
    gray = torch.tensor([d["gray"] for d in draws]).view(-1, 1, 1, 1)
    if gray.any():
        out = torch.where(gray, _luma(out).expand_as(out), out)
    for i, draw in enumerate(draws):
        if draw["blur_sigma"] > 0:
            kernel = 2 * math.ceil(3 * draw["blur_sigma"]) + 1
            out[i] = TF.gaussian_blur(out[i], [kernel, kernel], [draw["blur_sigma"]] * 2)
    solarize = torch.tensor([d["solarize"] for d in draws]).view(-1, 1, 1, 1)
    if solarize.any():
        out = torch.where(solarize & (out >= 0.5), 1 - out, out)
    flip = torch.tensor([d["flip"] for d in draws]).view(-1, 1, 1, 1)
    return torch.where(flip, out.flip(-1), out)


def view_list(config: dict) -> list[ViewParams]:
    """The two large views, then the small crops, from ``augment``, ``augment.views`` and ``data.image_size``.

    ``augment.views`` (the method's pair unless set; pretrain.methods.base):
    ``weak_standard`` (ReSA: crop + flip, then the standard view), ``symmetric`` (two standard
    views, SimCLR / solo-learn ``augmentations/symmetric.yaml``), ``asymmetric`` (view 2 takes
    ``augment.second_view``'s blur and solarization probabilities, BYOL / solo-learn
    ``augmentations/asymmetric.yaml``). Multi-crop (2 x 224 + N x 96): the small crops are
    standard views at ``augment.small_crop_size`` with scale ``(small_min_scale, small_max_scale)``.
    """
    aug, size = config["augment"], config["data"]["image_size"]
    if aug["views"] not in ("weak_standard", "symmetric", "asymmetric"):
        raise ValueError(f"augment.views {aug['views']!r} is not resolved (pretrain.config.resolve does it)")
    standard = {key: aug[key] for key in ("min_scale", "max_scale", "color_jitter_prob", "brightness", "contrast",
                                          "saturation", "hue", "grayscale_prob", "blur_prob", "solarization_prob")}
    small = ViewParams(**{**standard, "crop_size": aug["small_crop_size"], "min_scale": aug["small_min_scale"],
                          "max_scale": aug["small_max_scale"]})
    second = ViewParams(crop_size=size, **standard)
    if aug["views"] == "weak_standard":
        first = weak_view(size, aug["min_scale"], aug["max_scale"])
    else:
        first = second
    if aug["views"] == "asymmetric":
        second = ViewParams(crop_size=size, **{**standard, **aug["second_view"]})
    return [first, second, *[small] * aug["num_small_crops"]]
