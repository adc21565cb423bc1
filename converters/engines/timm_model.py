"""Load a written timm file into ``timm.create_model(...)`` and compare pooled features."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from converters.backbone import Backbone
from converters.engines import EngineResult, max_abs_diff, normalised, probe_image, source_model
from converters.safe_load import load_checkpoint_file

# registry arch -> timm model name; resnet18_cifar is timm's resnet18 with the CIFAR stem swapped in.
TIMM_NAMES = {
    "resnet18": "resnet18", "resnet18_cifar": "resnet18", "resnet50": "resnet50",
    "vit_small_patch16": "vit_small_patch16_224",
}


def build_timm(arch: str) -> nn.Module:
    model = timm.create_model(TIMM_NAMES[arch], pretrained=False, num_classes=0)
    if arch == "resnet18_cifar":
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def check_timm(backbone: Backbone, out: Path) -> list[EngineResult]:
    if backbone.arch not in TIMM_NAMES:
        return [EngineResult("timm", skipped=f"no timm model name known for arch {backbone.arch}")]
    name = f"timm {TIMM_NAMES[backbone.arch]}"
    model = build_timm(backbone.arch)
    incompatible = model.load_state_dict(load_checkpoint_file(out), strict=False)
    size = 224 if backbone.arch.startswith("vit") else 64
    x = normalised(probe_image(size))
    with torch.no_grad():
        diff = max_abs_diff(model.eval()(x), source_model(backbone)(x))
    return [EngineResult(name, missing=len(incompatible.missing_keys), unexpected=len(incompatible.unexpected_keys),
                         max_abs_diff=diff, compared="pooled features")]
