"""The feature cache never serves stale features: another backbone or another transform is a new key.

``downstream.features.cached_features`` keys ``<run>/features/<key>.pt`` by the backbone's sha256
and the evaluation transform (docs/classification.md). A same-key call must load the file
without reading the images; a call with another backbone or another image size / normalisation
must extract again and return exactly what the encoder gives on the new view (the outside truth
is ``extract_features`` run directly, without any cache).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from downstream.features import cached_features, extract_features
from resa_core.data.fashion_mnist import ImageArray

CONFIG = {"subset_seed": 0, "test_size": None, "image_size": 16, "normalization": "fashion_mnist", "batch_size": 4}


def encoder(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(2), nn.Flatten())


def test_another_backbone_or_transform_recomputes_and_the_same_key_loads(tmp_path):
    rng = np.random.default_rng(0)
    images = ImageArray(rng.integers(0, 256, (6, 12, 12), dtype=np.uint8), np.arange(6) % 3, np.arange(6))
    reads = []

    def features(sha: str, model: nn.Module, config: dict) -> torch.Tensor:
        def load():
            reads.append(sha)
            return images

        return cached_features(tmp_path, sha, model, "toy", "test", config, load).features

    def truth(model: nn.Module, config: dict) -> torch.Tensor:
        return extract_features(model, images.images, config["image_size"], config["normalization"], 4)

    first, second = encoder(0), encoder(1)
    assert torch.equal(features("sha-a", first, CONFIG), truth(first, CONFIG)) and reads == ["sha-a"]
    assert torch.equal(features("sha-a", first, CONFIG), truth(first, CONFIG)) and reads == ["sha-a"]  # a hit

    assert torch.equal(features("sha-b", second, CONFIG), truth(second, CONFIG)) and len(reads) == 2
    for change in ({"image_size": 20}, {"normalization": "imagenet"}):
        config = {**CONFIG, **change}
        assert torch.equal(features("sha-a", first, config), truth(first, config)), change
    assert len(reads) == 4
    assert len(list((tmp_path / "features").glob("*.pt"))) == 4
