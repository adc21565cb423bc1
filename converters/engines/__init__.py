"""Loading a written file into the real target framework's model, and comparing its features.

Each module checks one framework (timm, Detectron2, MMSegmentation) and returns
:class:`EngineResult` rows; a framework that is not installed gives a "skipped" row naming why,
so ``--verify`` says exactly which engines it exercised. The source side is always the
registry's model (``pretrain.models``) loaded with the canonical backbone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from converters.backbone import Backbone
from pretrain.models import build_backbone

FEATURE_TOLERANCE = 1e-4
# Depth of each registered standard-stem ResNet, as Detectron2 and mmseg ResNet builders take it.
RESNET_DEPTHS = {"resnet18": 18, "resnet50": 50}
PROBE_SEED = 0
# torchvision's ImageNet normalisation, as the pretraining recipes use it (RGB, 0-1 scale).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EngineResult:
    """One target model: how many of its backbone keys stayed empty, and the feature difference."""

    model: str  # e.g. "Detectron2 R50-C4"
    missing: int | None = None  # target backbone keys the file did not fill
    unexpected: int | None = None  # file tensors the target model has no place for
    max_abs_diff: float | None = None
    compared: str = ""  # which features, e.g. "res5 vs layer4"
    skipped: str | None = None  # why the engine was not exercised

    @property
    def ok(self) -> bool:
        return self.skipped is not None or (
            self.missing == 0 and self.unexpected == 0 and self.max_abs_diff <= FEATURE_TOLERANCE
        )

    def summary(self) -> str:
        if self.skipped:
            return f"{self.model}: skipped ({self.skipped})"
        return (
            f"{self.model}: {self.missing} missing / {self.unexpected} unexpected keys, "
            f"{self.compared} max |diff| {self.max_abs_diff:.2e}"
        )


def probe_image(size: int) -> torch.Tensor:
    """A fixed seeded RGB image, values 0-255, shape (1, 3, size, size)."""
    generator = torch.Generator().manual_seed(PROBE_SEED)
    return torch.rand(1, 3, size, size, generator=generator) * 255


def normalised(image: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (image / 255 - mean) / std


def source_model(backbone: Backbone) -> torch.nn.Module:
    """The registry model holding the canonical backbone, in eval mode."""
    model = build_backbone(backbone.arch)
    model.load_state_dict(backbone.state_dict, strict=True)
    return model.eval()


def resnet_layer4(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A torchvision ResNet's last feature map (before pooling)."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def vit_patch_tokens(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A timm ViT's final-norm patch tokens as a (B, C, H, W) map (the class token dropped)."""
    tokens = model.forward_features(x)[:, model.num_prefix_tokens:]
    side = int(tokens.shape[1] ** 0.5)
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return (a - b).abs().max().item()
