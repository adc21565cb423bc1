"""Load a written ``.pkl`` into Detectron2's R-C4 and R-FPN models the way training does, and compare res5.

The config follows facebookresearch/moco ``detection/configs/Base-RCNN-C4-BN.yaml`` (RGB input,
torchvision pixel mean/std in 0-255, ``STRIDE_IN_1X1: False``) with ``NORM: BN`` (SyncBN needs a
process group) and Detectron2's ``Base-RCNN-FPN.yaml`` for FPN. The file goes through
``DetectionCheckpointer``'s matching heuristics, handed the dict our restricted unpickler
loaded (Detectron2 would ``pickle.load`` the path). res5 is the C4 ROI head's ``res5`` stage
on the backbone's res4, and the FPN bottom-up's res5; both must equal torchvision's layer4.
"""

from __future__ import annotations

from pathlib import Path

import torch

from converters.backbone import Backbone
from converters.engines import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RESNET_DEPTHS,
    EngineResult,
    max_abs_diff,
    normalised,
    probe_image,
    resnet_layer4,
    source_model,
)
from converters.safe_load import load_pickle

FPN_LEVELS = ["res2", "res3", "res4", "res5"]


def _config(depth: int, fpn: bool):
    from detectron2.config import get_cfg

    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.INPUT.FORMAT = "RGB"
    cfg.MODEL.PIXEL_MEAN = [255 * value for value in IMAGENET_MEAN]
    cfg.MODEL.PIXEL_STD = [255 * value for value in IMAGENET_STD]
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth < 50 else 256
    if fpn:
        cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
        cfg.MODEL.RESNETS.OUT_FEATURES = FPN_LEVELS
        cfg.MODEL.FPN.IN_FEATURES = FPN_LEVELS
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]
        cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
        cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
        cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
        cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
        cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    return cfg


def _backbone_key(key: str) -> bool:
    """ResNet keys of the model: C4's backbone and ROI-head res5, FPN's bottom-up (not its own FPN convs)."""
    return key.startswith(("backbone.", "roi_heads.res5.")) and not key.startswith("backbone.fpn_")


def _check(backbone: Backbone, payload: dict, fpn: bool) -> EngineResult:
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    depth = RESNET_DEPTHS[backbone.arch]
    cfg = _config(depth, fpn)
    model = build_model(cfg).eval()
    checkpoint = {**payload, "model": dict(payload["model"])}  # the checkpointer edits it in place
    incompatible = DetectionCheckpointer(model)._load_model(checkpoint)
    missing = [key for key in incompatible.missing_keys if _backbone_key(key)]
    unexpected = list(incompatible.unexpected_keys)
    image = probe_image(64)
    name = f"Detectron2 R{depth}-{'FPN' if fpn else 'C4'}"
    with torch.no_grad():
        x = model.preprocess_image([{"image": image[0]}]).tensor
        # Detectron2's pixel normalisation must be torchvision's; then both nets get the same tensor,
        # so float rounding of the two normalisations is not amplified through 50 layers.
        normalisation_diff = max_abs_diff(x, normalised(image))
        if normalisation_diff > 1e-5:
            return EngineResult(name, missing=len(missing), unexpected=len(unexpected),
                                max_abs_diff=normalisation_diff, compared="pixel normalisation")
        if fpn:
            res5 = model.backbone.bottom_up(x)["res5"]
        else:
            res5 = model.roi_heads.res5(model.backbone(x)["res4"])
        expected = resnet_layer4(source_model(backbone), x)
    return EngineResult(name, missing=len(missing), unexpected=len(unexpected),
                        max_abs_diff=max_abs_diff(res5, expected), compared="res5 vs layer4")


def check_detectron2(backbone: Backbone, out: Path) -> list[EngineResult]:
    try:
        import detectron2.modeling  # noqa: F401
    except ImportError as err:
        return [EngineResult("Detectron2", skipped=f"not importable: {err}")]
    if backbone.arch not in RESNET_DEPTHS:
        return [EngineResult("Detectron2", skipped=f"no Detectron2 ResNet depth known for arch {backbone.arch}")]
    payload = load_pickle(out)
    results = [_check(backbone, payload, fpn=True)]
    if RESNET_DEPTHS[backbone.arch] >= 50:
        results.insert(0, _check(backbone, payload, fpn=False))
    else:  # Res5ROIHeads builds bottleneck blocks only
        name = f"Detectron2 R{RESNET_DEPTHS[backbone.arch]}-C4"
        results.insert(0, EngineResult(name, skipped="C4 heads need a bottleneck ResNet"))
    return results
