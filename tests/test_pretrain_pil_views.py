"""PIL views: draws keyed by (seed, epoch, index, view), and reduced-scale JPEG decoding that keeps the geometry."""

import io
from pathlib import Path

import numpy as np
import sklearn
import torch
from PIL import Image

from pretrain.data import pil_views
from pretrain.data.loader import LoaderBatches
from pretrain.data.pil_views import ViewMaker, augment_pil, decode_for_crops
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


def test_views_are_keyed_by_seed_epoch_index_and_view_only():
    photo = Image.open(PHOTO).convert("RGB")
    maker = ViewMaker([STANDARD, STANDARD], seed=3, stats="imagenet")
    first, again = maker(2, 17, photo), maker(2, 17, photo.copy())
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], first[1])  # two views, two draws
    assert not torch.equal(first[0], maker(3, 17, photo)[0]) and not torch.equal(first[0], maker(2, 18, photo)[0])
    # the same pixels as augment_pil with the (seed, epoch, index, view) generator, normalised
    view = augment_pil(photo, STANDARD, np.random.default_rng((3, 2, 17, 1)))
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    expected = (torch.as_tensor(np.array(view)).permute(2, 0, 1) / 255 - mean[:, None, None]) / std[:, None, None]
    assert torch.allclose(first[1], expected, atol=1e-5)


def test_reduced_jpeg_decoding_keeps_the_draws_and_the_crop_geometry():
    data = _large_jpeg()
    lazy = Image.open(io.BytesIO(data))
    full = Image.open(io.BytesIO(data)).convert("RGB")  # decoded: the plain full-resolution path
    draws = [draw_view_params(STANDARD, np.random.default_rng((0, 0, 5, v)), full.height, full.width) for v in (0, 1)]
    _, scale = decode_for_crops(Image.open(io.BytesIO(data)), [d["box"] for d in draws], [48, 48])
    assert scale == (0.125, 0.125)  # boxes >= 0.77 * 1708 px for 48 px crops: the 1/8 DCT scale
    maker = ViewMaker([STANDARD, STANDARD], seed=0, stats="imagenet")
    reduced, reference = maker(0, 5, lazy), maker(0, 5, full)
    for fast, slow in zip(reduced, reference, strict=True):
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
    reference = ViewMaker([STANDARD, STANDARD], seed=0, stats="imagenet")(0, 0, full)  # the (seed, epoch, index) draws
    for fast, slow in zip(views, reference, strict=True):
        assert fast.shape == (1, *slow.shape)
        assert (fast[0] - slow).abs().mean() < 0.05
        assert (fast[0].mean((1, 2)) - slow.mean((1, 2))).abs().max() < 0.02
