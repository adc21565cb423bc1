"""PIL views: draws keyed by (seed, epoch, index, view), pixels bit-identical to torchvision's PIL ops, and
reduced-scale JPEG decoding that keeps the geometry."""

import dataclasses
import io
from pathlib import Path

import numpy as np
import sklearn
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageFilter, ImageOps

from pretrain.data import pil_views
from pretrain.data.loader import LoaderBatches
from pretrain.data.pil_views import ViewMaker, augment_pil, decode_for_crops, normalize_views
from pretrain.data.views import ViewParams, draw_view_params
from resa_core.data.catalog import open_dataset

PHOTO = Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg"  # a real 640 x 427 JPEG photograph
STANDARD = ViewParams(crop_size=48, min_scale=0.6, color_jitter_prob=0.8, grayscale_prob=0.2, blur_prob=0.5,
                      solarization_prob=0.2)


def _large_jpeg() -> bytes:
    """The photograph upscaled 4x (2560 x 1708) and re-encoded, so crops allow 1/8-scale decoding."""
    photo = Image.open(PHOTO).convert("RGB")
    buffer = io.BytesIO()
    photo.resize((photo.width * 4, photo.height * 4), Image.BICUBIC).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def normalize_imagenet(view: torch.Tensor) -> torch.Tensor:
    return normalize_views(view, "imagenet")


def test_views_are_keyed_by_seed_epoch_index_and_view_only():
    photo = Image.open(PHOTO).convert("RGB")
    maker = ViewMaker([STANDARD, STANDARD], seed=3)
    first, again = maker(2, 17, photo), maker(2, 17, photo.copy())
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], first[1])  # two views, two draws
    assert not torch.equal(first[0], maker(3, 17, photo)[0]) and not torch.equal(first[0], maker(2, 18, photo)[0])
    # the same pixels as augment_pil with the (seed, epoch, index, view) generator
    view = augment_pil(photo, STANDARD, np.random.default_rng((3, 2, 17, 1)))
    assert first[1].dtype == torch.uint8 and torch.equal(first[1], torch.as_tensor(np.array(view)).permute(2, 0, 1))


def test_normalisation_is_per_channel_mean_and_std_of_pixels_in_0_1():
    pixels = torch.randint(0, 256, (2, 3, 5, 4), dtype=torch.uint8)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    expected = (pixels / 255 - mean[:, None, None]) / std[:, None, None]
    got = normalize_views(pixels, "imagenet")
    assert got.dtype == torch.float32 and torch.allclose(got, expected, atol=1e-5)


def test_reduced_jpeg_decoding_keeps_the_draws_and_the_crop_geometry():
    data = _large_jpeg()
    lazy = Image.open(io.BytesIO(data))
    full = Image.open(io.BytesIO(data)).convert("RGB")  # decoded: the plain full-resolution path
    draws = [draw_view_params(STANDARD, np.random.default_rng((0, 0, 5, v)), full.height, full.width) for v in (0, 1)]
    _, scale = decode_for_crops(Image.open(io.BytesIO(data)), [d["box"] for d in draws], [48, 48])
    assert scale == (0.125, 0.125)  # boxes >= 0.77 * 1708 px for 48 px crops: the 1/8 DCT scale
    maker = ViewMaker([STANDARD, STANDARD], seed=0)
    reduced, reference = maker(0, 5, lazy), maker(0, 5, full)
    for fast, slow in zip(map(normalize_imagenet, reduced), map(normalize_imagenet, reference), strict=True):
        # same draws (jitter, grey, blur, solarise, flip) and the same region: only resampling differs
        assert (fast - slow).abs().mean() < 0.05
        assert (fast.mean((1, 2)) - slow.mean((1, 2))).abs().max() < 0.02


def test_the_loader_hands_jpeg_files_undecoded_to_the_view_maker(tmp_path, monkeypatch):
    folder = tmp_path / "train" / "photo"
    folder.mkdir(parents=True)
    (folder / "large.jpg").write_bytes(_large_jpeg())
    data = open_dataset("imagefolder", "train", root=tmp_path)
    scales, decode = [], pil_views.decode_for_crops

    def spy(image, boxes, sizes):
        decoded, scale = decode(image, boxes, sizes)
        scales.append(scale)
        return decoded, scale

    monkeypatch.setattr(pil_views, "decode_for_crops", spy)
    batches = LoaderBatches(data, [STANDARD, STANDARD], seed=0, stats="imagenet", global_batch=1, num_workers=0)
    (views,) = list(batches.epoch(0, 0))
    assert scales == [(0.125, 0.125)]  # decoded once, inside the view maker, at the 1/8 DCT scale
    full = Image.open(folder / "large.jpg").convert("RGB")
    reference = ViewMaker([STANDARD, STANDARD], seed=0)(0, 0, full)  # the (seed, epoch, index) draws
    for fast, slow in zip(views, map(normalize_imagenet, reference), strict=True):
        assert fast.shape == (1, *slow.shape)
        assert (fast[0] - slow).abs().mean() < 0.05
        assert (fast[0].mean((1, 2)) - slow.mean((1, 2))).abs().max() < 0.02


def _torchvision_view(image: Image.Image, draw: dict, size: int) -> np.ndarray:
    """The reference: torchvision's PIL functional ops, composed as solo-learn's ImageNetTransform does."""
    (left, top, right, bottom), (brightness, contrast, saturation, hue) = draw["box"], draw["factors"]
    out = TF.resized_crop(image, top, left, bottom - top, right - left, [size, size], antialias=True)
    if draw["jitter"]:
        out = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(
            out, brightness), contrast), saturation), hue)
    if draw["gray"]:
        out = TF.rgb_to_grayscale(out, num_output_channels=3)
    if draw["blur_sigma"] > 0:
        out = out.filter(ImageFilter.GaussianBlur(radius=draw["blur_sigma"]))
    if draw["solarize"]:
        out = ImageOps.solarize(out, 128)
    if draw["flip"]:
        out = TF.horizontal_flip(out)
    return np.asarray(out)


def test_views_are_bit_identical_to_torchvision_pil_ops():
    # strong jitter (clipping brightness, hues of both signs), every op on about half the views
    params = ViewParams(crop_size=40, min_scale=0.05, max_scale=0.5, color_jitter_prob=0.9, brightness=0.8,
                        contrast=0.8, saturation=0.8, hue=0.5, grayscale_prob=0.5, blur_prob=0.5,
                        solarization_prob=0.5)
    photo = Image.open(PHOTO).convert("RGB")
    seen = set()
    for key in range(24):
        draw = draw_view_params(params, np.random.default_rng((1, 0, key, 0)), photo.height, photo.width)
        ours = augment_pil(photo, params, np.random.default_rng((1, 0, key, 0)))
        assert ours.mode == "RGB" and np.array_equal(np.asarray(ours), _torchvision_view(photo, draw, 40))
        seen |= {name for name in ("jitter", "gray", "blur_sigma", "solarize", "flip") if draw[name]}
    assert len(seen) == 5  # every operation was exercised


def test_views_of_two_sizes_keep_their_order():
    large, small = ViewParams(crop_size=48, min_scale=0.3), dataclasses.replace(STANDARD, crop_size=24)
    views = [large, small, large, dataclasses.replace(small, grayscale_prob=1.0), small]  # a grey view: mode L
    photo = Image.open(PHOTO).convert("RGB")
    made = ViewMaker(views, seed=4)(1, 9, photo)
    for v, (params, tensor) in enumerate(zip(views, made, strict=True)):
        view = augment_pil(photo, params, np.random.default_rng((4, 1, 9, v)))
        assert torch.equal(tensor, torch.as_tensor(np.array(view)).permute(2, 0, 1))
