"""Per-sample PIL augmentations with the same parameters and draws as the batched path.

For file-backed datasets read by DataLoader workers: sample i's view v in epoch e uses a
generator seeded by ``(seed, e, i, v)`` (:func:`pretrain.data.views.draw_view_params`), never a worker's
global RNG, so the views do not depend on the number of workers or on where a run resumed.
The operations follow the authors' ``src/transform.py`` (solo-learn's ``ImageNetTransform``):
RandomResizedCrop, ColorJitter (fixed brightness-contrast-saturation-hue order), grayscale,
PIL GaussianBlur with sigma in [0.1, 2], PIL solarize (threshold 128), horizontal flip.

Speed (``python -m benchmarks.input_pipeline``): every view's parameters are drawn first, from
the image's full size. When the image is a JPEG not yet decoded and every crop box is at least
twice its output size, the JPEG is decoded at a reduced scale (PIL ``draft``: 1/2, 1/4 or 1/8
in the DCT, far cheaper than a full decode plus a large antialiased downscale) and each crop is
resampled from the same box in original-image coordinates, scaled to the reduced image (a
float box, so the geometry is unchanged). Otherwise the crop is the plain crop + resize. The
tensor conversion scales and normalises uint8 pixels in one fused pass.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageFilter, ImageOps, JpegImagePlugin

from pretrain.data.views import ViewParams, draw_view_params
from resa_core.data.tensors import NORMALIZATION


def _crop(image: Image.Image, box: tuple[float, float, float, float], size: int, scale: tuple[float, float]):
    """RandomResizedCrop's resample of ``box`` (original-image coordinates) to ``size`` x ``size``."""
    left, top, right, bottom = box
    if scale == (1.0, 1.0):
        return TF.resized_crop(image, top, left, bottom - top, right - left, [size, size], antialias=True)
    sx, sy = scale
    return image.resize((size, size), Image.BILINEAR, box=(left * sx, top * sy, right * sx, bottom * sy))


def _photometric(out: Image.Image, draw: dict) -> Image.Image:
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


def augment_pil(image: Image.Image, params: ViewParams, rng: np.random.Generator) -> Image.Image:
    """One view of a decoded RGB image (full resolution)."""
    draw = draw_view_params(params, rng, image.height, image.width)
    return _photometric(_crop(image, draw["box"], params.crop_size, (1.0, 1.0)), draw)


def decode_for_crops(image: Image.Image, boxes: list[tuple], sizes: list[int]) -> tuple[Image.Image, tuple]:
    """The RGB image, JPEG-decoded at the smallest DCT scale keeping every box at least its output size.

    Returns the image and its ``(x, y)`` scale relative to the original size ((1, 1) when not reduced).
    """
    width, height = image.size
    scale = (1.0, 1.0)
    if isinstance(image, JpegImagePlugin.JpegImageFile) and image.tile:  # tile: not decoded yet
        shrink = min(min(right - left, bottom - top) / size for (left, top, right, bottom), size in zip(
            boxes, sizes, strict=True))
        if shrink >= 2:
            # the DCT scale s in {2, 4, 8} with W // s >= W / shrink; draft returns the original
            # image's box in reduced coordinates, (0, 0, W / s, H / s): pixel j covers [s j, s j + s)
            configured = image.draft("RGB", (int(width / shrink) + 1, int(height / shrink) + 1))
            if configured is not None:
                _, box = configured
                scale = (box[2] / width, box[3] / height)
    return image.convert("RGB"), scale


class ViewMaker:
    """Turns ``(epoch, index, PIL image)`` into the list of normalised view tensors."""

    def __init__(self, views: list[ViewParams], seed: int, stats: str):
        self.views, self.seed = views, seed
        mean, std = NORMALIZATION[stats]
        # (x / 255 - mean) / std as one multiply-add on the uint8 values
        self.scale = (1.0 / (255.0 * torch.tensor(std))).view(3, 1, 1)
        self.offset = (-torch.tensor(mean) / torch.tensor(std)).view(3, 1, 1)

    def __call__(self, epoch: int, index: int, image: Image.Image) -> list[torch.Tensor]:
        width, height = image.size
        draws = [draw_view_params(params, np.random.default_rng((self.seed, epoch, index, v)), height, width)
                 for v, params in enumerate(self.views)]
        decoded, scale = decode_for_crops(image, [d["box"] for d in draws], [p.crop_size for p in self.views])
        out = []
        for params, draw in zip(self.views, draws, strict=True):
            view = _photometric(_crop(decoded, draw["box"], params.crop_size, scale), draw)
            out.append(torch.addcmul(self.offset, TF.pil_to_tensor(view).float(), self.scale))
        return out
