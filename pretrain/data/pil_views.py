"""Per-sample PIL augmentations with the same parameters and draws as the batched path.

For file-backed datasets read by DataLoader workers: sample i's view v in epoch e uses a
generator seeded by ``(seed, e, i, v)`` (:func:`pretrain.data.views.draw_view_params`), never a worker's
global RNG, so the views do not depend on the number of workers or on where a run resumed.
The operations follow the authors' ``src/transform.py`` (solo-learn's ``ImageNetTransform``):
RandomResizedCrop, ColorJitter (fixed brightness-contrast-saturation-hue order), grayscale,
PIL GaussianBlur with sigma in [0.1, 2], PIL solarize (threshold 128), horizontal flip.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageFilter, ImageOps

from pretrain.data.views import ViewParams, draw_view_params
from resa_core.data.tensors import NORMALIZATION


def augment_pil(image: Image.Image, params: ViewParams, rng: np.random.Generator) -> Image.Image:
    draw = draw_view_params(params, rng, image.height, image.width)
    left, top, right, bottom = draw["box"]
    out = TF.resized_crop(image, top, left, bottom - top, right - left, [params.crop_size, params.crop_size],
                          antialias=True)
    if draw["jitter"]:
        brightness, contrast, saturation, hue = draw["factors"]
        out = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(
            out, brightness), contrast), saturation), hue)
    if draw["gray"]:
        out = TF.rgb_to_grayscale(out, num_output_channels=3)
    if draw["blur_sigma"] > 0:
        out = out.filter(ImageFilter.GaussianBlur(radius=draw["blur_sigma"]))
    if draw["solarize"]:
        out = ImageOps.solarize(out)
    if draw["flip"]:
        out = TF.horizontal_flip(out)
    return out


class ViewMaker:
    """Turns ``(epoch, index, PIL image)`` into the list of normalised view tensors."""

    def __init__(self, views: list[ViewParams], seed: int, stats: str):
        self.views, self.seed = views, seed
        mean, std = NORMALIZATION[stats]
        self.mean, self.std = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)

    def __call__(self, epoch: int, index: int, image: Image.Image) -> list[torch.Tensor]:
        out = []
        for v, params in enumerate(self.views):
            view = augment_pil(image, params, np.random.default_rng((self.seed, epoch, index, v)))
            tensor = TF.pil_to_tensor(view).float().div_(255)
            out.append((tensor - self.mean) / self.std)
        return out
