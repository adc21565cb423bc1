"""Load a written ``.pth`` into MMSegmentation's ``ResNet`` / ``VisionTransformer`` with mmengine, strictly.

The file goes through ``mmengine.runner.load_checkpoint(..., strict=True)``, the loader behind a
config's ``init_cfg=dict(type="Pretrained", checkpoint=...)``, so a missing or unexpected key
fails here. Backbone settings match what the converted weights are: ``ResNet(depth)`` (pytorch
style, 7x7 stem) and, for ViT-S/16, the ``VisionTransformer`` of mmseg's ViT configs with
``LN(eps=1e-6)`` and ``patch_bias=True`` as timm (mmseg 1.x defaults it to False), and the arch's
head count (:data:`VIT_HEADS`). Compared:
ResNet stage 4 vs torchvision ``layer4``; ViT last-layer patch tokens (after the final norm) vs timm's.

mmseg 1.x imports ``mmcv.ops`` at ``import mmseg.models``; :func:`resa_core.mmseg_import.import_mmseg`
registers the lite ops first when only ``mmcv-lite`` is installed. Without MMSegmentation the check
is skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import torch

from converters.backbone import Backbone
from converters.engines import (
    RESNET_DEPTHS,
    EngineResult,
    max_abs_diff,
    normalised,
    probe_image,
    resnet_layer4,
    source_model,
    vit_patch_tokens,
)
from pretrain.models import arch_spec
from resa_core.errors import UserError
from resa_core.mmseg_import import import_mmseg

VIT_S16 = dict(
    img_size=224, patch_size=16, embed_dims=384, num_layers=12, num_heads=6, mlp_ratio=4, qkv_bias=True,
    patch_bias=True, out_indices=(11,), final_norm=True, with_cls_token=True, output_cls_token=False,
    norm_cfg=dict(type="LN", eps=1e-6), interpolate_mode="bicubic",
)
# Head count of each registered ViT-S/16 (pretrain/models/vit.py; MoCo v3's has 12, moco-v3 vits.py).
VIT_HEADS = {"vit_small_patch16": 6, "vit_small_patch16_12h": 12}


def mmseg_backbone_settings(arch: str) -> dict:
    """The mmseg backbone settings the weights of ``arch`` need beyond their shapes (the mmseg target's
    ``meta["mmseg_backbone"]``): ``type`` and, for ViTs, ``num_heads``, which a config must set."""
    if arch in VIT_HEADS:
        return {"type": "VisionTransformer", "num_heads": VIT_HEADS[arch]}
    return {"type": "ResNet", "depth": RESNET_DEPTHS[arch]} if arch in RESNET_DEPTHS else {}


def _build(arch: str):
    from mmseg.models.backbones import ResNet, VisionTransformer

    if arch_spec(arch).family == "vit":
        heads = VIT_HEADS[arch]
        label = "VisionTransformer ViT-S/16" + ("" if heads == VIT_S16["num_heads"] else f" num_heads={heads}")
        return label, VisionTransformer(**{**VIT_S16, "num_heads": heads})
    depth = RESNET_DEPTHS[arch]
    return f"ResNet(depth={depth})", ResNet(depth=depth, out_indices=(3,), norm_cfg=dict(type="BN"))


def check_mmseg(backbone: Backbone, out: Path) -> list[EngineResult]:
    try:
        import_mmseg()
        import mmseg.models  # noqa: F401
        from mmengine.runner import load_checkpoint
    except (ImportError, UserError) as err:
        return [EngineResult("MMSegmentation", skipped=f"not importable: {err}")]
    if not mmseg_backbone_settings(backbone.arch):
        return [EngineResult("MMSegmentation", skipped=f"no mmseg backbone settings known for arch {backbone.arch}")]
    name, model = _build(backbone.arch)
    name = f"MMSegmentation {name}"
    try:
        load_checkpoint(model, str(out), map_location="cpu", strict=True)
    except RuntimeError as err:
        reason = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        raise UserError(f"{out}: verify: {name} refuses the file: {reason[:400]}") from None
    model.eval()
    vit = arch_spec(backbone.arch).family == "vit"
    x = normalised(probe_image(224 if vit else 64))
    with torch.no_grad():
        got = model(x)[-1]
        reference = source_model(backbone)
        expected = vit_patch_tokens(reference, x) if vit else resnet_layer4(reference, x)
    compared = "last-layer patch tokens" if vit else "stage 4 vs layer4"
    return [EngineResult(name, missing=0, unexpected=0, max_abs_diff=max_abs_diff(got, expected), compared=compared)]
