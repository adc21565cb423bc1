"""Load a written timm file into ``timm.create_model(...)`` and compare pooled features.

:data:`TIMM_MODELS` is how each registry arch is built in timm: the model name plus the
``create_model`` keyword arguments that the weights cannot show (MoCo v3's ViT-S/16 has 12 heads,
facebookresearch/moco-v3 ``vits.py`` ``vit_small``); the timm target writes both into its sidecar.
CIFAR ResNets are timm's resnet18 with the 3x3 stem swapped in (:data:`CIFAR_STEM_PADDING`).
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from converters.backbone import Backbone
from converters.engines import EngineResult, max_abs_diff, normalised, probe_image, source_model
from converters.safe_load import load_checkpoint_file

# registry arch -> (timm model name, create_model keyword arguments)
TIMM_MODELS = {
    "resnet18": ("resnet18", {}), "resnet18_cifar": ("resnet18", {}), "resnet18_cifar_pad2": ("resnet18", {}),
    "resnet50": ("resnet50", {}),
    "vit_small_patch16": ("vit_small_patch16_224", {}),
    "vit_small_patch16_12h": ("vit_small_patch16_224", {"num_heads": 12}),
}
# The 3x3 stride-1 conv1 padding of the CIFAR stems (pretrain/models/resnet.py: ReSA authors 1, solo-learn 2).
CIFAR_STEM_PADDING = {"resnet18_cifar": 1, "resnet18_cifar_pad2": 2}


def timm_settings(arch: str) -> dict:
    """``{"timm_model": name, "timm_kwargs": {...}}`` for ``timm.create_model`` (sidecar fields); {} if none."""
    if arch not in TIMM_MODELS:
        return {}
    name, kwargs = TIMM_MODELS[arch]
    return {"timm_model": name, "timm_kwargs": dict(kwargs)}


def build_timm(arch: str) -> nn.Module:
    name, kwargs = TIMM_MODELS[arch]
    model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    if arch in CIFAR_STEM_PADDING:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=CIFAR_STEM_PADDING[arch], bias=False)
        model.maxpool = nn.Identity()
    return model


def check_timm(backbone: Backbone, out: Path) -> list[EngineResult]:
    if backbone.arch not in TIMM_MODELS:
        return [EngineResult("timm", skipped=f"no timm model name known for arch {backbone.arch}")]
    name, kwargs = TIMM_MODELS[backbone.arch]
    label = f"timm {name}" + "".join(f" {key}={value}" for key, value in kwargs.items())
    model = build_timm(backbone.arch)
    incompatible = model.load_state_dict(load_checkpoint_file(out), strict=False)
    size = 224 if backbone.arch.startswith("vit") else 64
    x = normalised(probe_image(size))
    with torch.no_grad():
        diff = max_abs_diff(model.eval()(x), source_model(backbone)(x))
    return [EngineResult(label, missing=len(incompatible.missing_keys), unexpected=len(incompatible.unexpected_keys),
                         max_abs_diff=diff, compared="pooled features")]
