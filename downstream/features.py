"""Frozen-encoder features of one dataset role, computed once and cached in the run directory.

The cache file ``<run>/features/<key>.pt`` is keyed by the hash of everything that determines
the features: backbone sha256, dataset, role, subset parameters and the evaluation transform.
A rerun or a k sweep therefore loads instead of extracting. Files are written atomically, so
two jobs computing the same cache at once both leave a complete file (the last one wins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from downstream.transforms import eval_transform
from resa_core.atomic import sha256_json, torch_save_atomic
from resa_core.data.catalog import LabelledImages
from resa_core.data.fashion_mnist import ImageArray
from resa_core.data.tensors import eval_inputs

log = logging.getLogger(__name__)
CACHE_FORMAT_VERSION = 1  # bump when the stored content or the extraction changes


@dataclass(frozen=True)
class FeatureSet:
    """Features ``(N, D)`` float32, labels ``(N,)`` int64 and the images' indices in their split."""

    features: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor


def cache_key(backbone_sha256: str, dataset: str, role: str, config: dict) -> str:
    """sha256 of what fixes the features (the data root is left out: same files anywhere)."""
    return sha256_json({
        "version": CACHE_FORMAT_VERSION,
        "backbone_sha256": backbone_sha256,
        "dataset": dataset,
        "role": role,
        "subset_size": config.get(f"{role}_size"),
        "subset_seed": config["subset_seed"],
        "label_subset": config.get("label_subset") if role == "train" else None,
        "image_size": config["image_size"],
        "resize_size": config.get("resize_size"),
        "resize_interpolation": config.get("resize_interpolation", "bicubic"),
        "normalization": config["normalization"],
    })


@torch.inference_mode()
def extract_features(
    encoder: nn.Module, images: np.ndarray, image_size: int, normalization: str, batch_size: int,
    description: str = "features",
) -> torch.Tensor:
    """Run the frozen ``encoder`` (eval mode, no grad) over uint8 images in batches -> float32 (N, D)."""
    encoder.eval()
    device = next(encoder.parameters(), torch.empty(0)).device
    chunks = []
    for start in tqdm(range(0, len(images), batch_size), desc=description, unit="batch"):
        batch = eval_inputs(images[start : start + batch_size], image_size, normalization)
        chunks.append(encoder(batch.to(device)).float().cpu())
    return torch.cat(chunks)


@torch.inference_mode()
def extract_dataset_features(
    encoder: nn.Module, data: LabelledImages, config: dict, description: str = "features"
) -> torch.Tensor:
    """Frozen-encoder features of a catalog dataset read through a DataLoader (evaluation view)."""
    encoder.eval()
    device = next(encoder.parameters(), torch.empty(0)).device
    data.transform = eval_transform(config["image_size"], config.get("resize_size"), config["normalization"],
                                    config.get("resize_interpolation", "bicubic"))
    loader = DataLoader(data, batch_size=config["batch_size"], shuffle=False, num_workers=config["num_workers"],
                        pin_memory=device.type == "cuda")
    chunks = [encoder(images.to(device, non_blocking=True)).float().cpu()
              for images, _ in tqdm(loader, desc=description, unit="batch")]
    return torch.cat(chunks)


def cached_features(
    run_dir: str | Path, backbone_sha256: str, encoder: nn.Module, dataset: str, role: str,
    config: dict, load_images: Callable[[], ImageArray | LabelledImages],
) -> FeatureSet:
    """Features of ``role`` from the cache, or extracted from ``load_images()`` and cached."""
    path = Path(run_dir) / "features" / f"{cache_key(backbone_sha256, dataset, role, config)}.pt"
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            log.info("features %s/%s: cache hit %s", dataset, role, path)
            return FeatureSet(stored["features"], stored["labels"], stored["indices"])
        except (OSError, RuntimeError, KeyError) as err:  # unreadable cache: recompute, never trust
            log.warning("features %s/%s: ignoring unreadable cache %s (%s)", dataset, role, path, err)
    data = load_images()
    description = f"{dataset}/{role} features"
    if isinstance(data, LabelledImages):
        features = extract_dataset_features(encoder, data, config, description)
    else:
        features = extract_features(
            encoder, data.images, config["image_size"], config["normalization"], config["batch_size"], description
        )
    result = FeatureSet(features, torch.as_tensor(data.labels).long(), torch.as_tensor(data.indices).long())
    torch_save_atomic(path, {"features": result.features, "labels": result.labels, "indices": result.indices})
    log.info("features %s/%s: extracted %s -> %s", dataset, role, tuple(features.shape), path)
    return result
