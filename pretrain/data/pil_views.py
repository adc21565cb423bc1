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
float box, so the geometry is unchanged). Otherwise the crop is the plain crop + resize, and
every view is bit-identical to torchvision's PIL functional ops composed as solo-learn does
(``tests/test_pretrain_pil_views.py``), with fewer passes and no torchvision dispatch:
brightness, contrast and solarisation are 256-entry tables, hue shifts the H band of the HSV
image by a table, a grey view stays one band (mode L) until the uint8 tensor conversion.
Normalisation happens on whole batches after the transfer to the device (:func:`normalize_views`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageStat, JpegImagePlugin

from pretrain.data.views import ViewParams, draw_view_params
from resa_core.data.tensors import NORMALIZATION


def _crop(image: Image.Image, box: tuple[float, float, float, float], size: int, scale: tuple[float, float]):
    """RandomResizedCrop's resample of ``box`` (original-image coordinates) to ``size`` x ``size``.

    Full resolution: crop, then PIL's antialiased bilinear resize, exactly what torchvision's
    ``resized_crop`` does to a PIL image (``_functional_pil.crop`` + ``resize``), without its dispatch.
    """
    left, top, right, bottom = box
    if scale == (1.0, 1.0):
        return image.crop(box).resize((size, size), Image.BILINEAR)
    sx, sy = scale
    return image.resize((size, size), Image.BILINEAR, box=(left * sx, top * sy, right * sx, bottom * sy))


def _blend_lut(degenerate: int, factor: float) -> list[int]:
    """The 256-entry table of ``Image.blend(constant, image, factor)`` for one 8-bit band.

    ImageEnhance's Brightness (constant 0) and Contrast (constant: the mean grey) blend every
    byte with a constant, so the blend is a per-value function; tabulated by PIL's own blend on
    a 0..255 ramp it is bit-identical, and ``point`` applies it in one pass without allocating
    the constant image.
    """
    return list(Image.blend(Image.new("L", (256, 1), degenerate), _RAMP, factor).tobytes())


_IDENTITY = list(range(256))
_RAMP = Image.frombytes("L", (256, 1), bytes(range(256)))
# ImageOps.solarize(threshold=128): values >= 128 are inverted
_SOLARIZE = [value if value < 128 else 255 - value for value in range(256)]


def _color_jitter(out: Image.Image, factors: tuple[float, float, float, float]) -> Image.Image:
    """torchvision's PIL ``adjust_brightness``, ``_contrast``, ``_saturation``, ``_hue`` in this order.

    Bit-identical to them (``tests/test_pretrain_pil_views.py``), with fewer passes: brightness
    and contrast are lookup tables (:func:`_blend_lut`); contrast's grey level is ImageEnhance's
    ``int(mean(L) + 0.5)``; saturation is ImageEnhance.Color's blend with the L image; hue shifts
    the H band of the HSV image by ``uint8(int32(hue * 255))`` with a table on the HSV image
    instead of torchvision's split / NumPy add / merge.
    """
    brightness, contrast, saturation, hue = factors
    out = out.point(_blend_lut(0, brightness) * 3)
    mean = int(ImageStat.Stat(out.convert("L")).mean[0] + 0.5)
    out = out.point(_blend_lut(mean, contrast) * 3)
    out = Image.blend(out.convert("L").convert("RGB"), out, saturation)
    shift = int(np.int32(hue * 255).astype(np.uint8))
    return out.convert("HSV").point([(value + shift) % 256 for value in range(256)] + _IDENTITY * 2).convert("RGB")


def _photometric(out: Image.Image, draw: dict) -> Image.Image:
    """Jitter, grayscale, blur, solarise, flip (solo-learn's order). A grey view stays in mode L
    (blur, solarise and flip act on each band alike, so one band is three times less work); the
    tensor conversion replicates it to three channels, as ``rgb_to_grayscale(img, 3)`` does."""
    if draw["jitter"]:
        out = _color_jitter(out, draw["factors"])
    if draw["gray"]:
        out = out.convert("L")
    if draw["blur_sigma"] > 0:
        out = out.filter(ImageFilter.GaussianBlur(radius=draw["blur_sigma"]))
    if draw["solarize"]:
        out = out.point(_SOLARIZE * len(out.getbands()))
    if draw["flip"]:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out


def augment_pil(image: Image.Image, params: ViewParams, rng: np.random.Generator) -> Image.Image:
    """One view of a decoded RGB image (full resolution)."""
    draw = draw_view_params(params, rng, image.height, image.width)
    return _photometric(_crop(image, draw["box"], params.crop_size, (1.0, 1.0)), draw).convert("RGB")


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
    image.load()
    return (image if image.mode == "RGB" else image.convert("RGB")), scale  # convert would copy an RGB image


class ViewMaker:
    """Turns ``(epoch, index, PIL image)`` into the list of uint8 ``(3, H, W)`` view tensors.

    Normalisation is left to :func:`normalize_views` on whole batches, after the transfer to the
    training device (:meth:`pretrain.data.loader.LoaderBatches.epoch`): the DataLoader workers
    only make uint8 pixels, and the batches they pass through shared memory are four times
    smaller than float ones.
    """

    def __init__(self, views: list[ViewParams], seed: int):
        self.views, self.seed = views, seed

    def __call__(self, epoch: int, index: int, image: Image.Image) -> list[torch.Tensor]:
        width, height = image.size
        draws = [draw_view_params(params, np.random.default_rng((self.seed, epoch, index, v)), height, width)
                 for v, params in enumerate(self.views)]
        decoded, scale = decode_for_crops(image, [d["box"] for d in draws], [p.crop_size for p in self.views])
        return [to_tensor(_photometric(_crop(decoded, draw["box"], params.crop_size, scale), draw))
                for params, draw in zip(self.views, draws, strict=True)]


def to_tensor(view: Image.Image) -> torch.Tensor:
    """A uint8 ``(3, H, W)`` tensor of the view's pixels (a grey view, mode L, replicated to RGB)."""
    rgb = view if view.mode == "RGB" else view.convert("RGB")
    return torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(rgb.height, rgb.width, 3).permute(2, 0, 1)


def normalize_views(views: torch.Tensor, stats: str) -> torch.Tensor:
    """uint8 views ``(..., 3, H, W)`` -> float32 ``(x / 255 - mean) / std`` as one multiply-add, on their device."""
    offset, scale = _affine(stats, views.device)
    return torch.addcmul(offset, views.float(), scale)


@functools.cache
def _affine(stats: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(-mean / std, 1 / (255 std))`` as ``(3, 1, 1)`` float32 tensors, made once per device."""
    mean, std = (torch.tensor(values).view(3, 1, 1) for values in NORMALIZATION[stats])
    return (-mean / std).to(device), (1.0 / (255.0 * std)).to(device)
