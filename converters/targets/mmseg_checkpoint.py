"""Write an MMSegmentation / MMDetection backbone checkpoint: ``{"state_dict": ..., "meta": provenance}``.

mmengine's ``load_checkpoint`` (open-mmlab/mmengine ``mmengine/runner/checkpoint.py``) takes
``checkpoint["state_dict"]``; MMSegmentation's ``ResNet`` uses torchvision's key names, and ViTs
are renamed to its ``VisionTransformer``'s (:mod:`converters.mmseg_keys`), so the config points
``model.backbone.init_cfg=dict(type="Pretrained", checkpoint=<this file>)`` at it without a
``prefix``. Plain tensors, strings and ints only: it loads with ``weights_only=True``.
``meta["mmseg_backbone"]`` holds what the config's backbone must say beyond the weights' shapes
(:func:`converters.engines.mmseg_model.mmseg_backbone_settings`, e.g. ``num_heads=12`` for MoCo v3's ViT-S/16).
"""

from __future__ import annotations

from pathlib import Path

from converters.backbone import Backbone
from converters.engines.mmseg_model import check_mmseg, mmseg_backbone_settings
from converters.mmseg_keys import to_mmseg_vit
from converters.provenance import provenance_of
from converters.targets import Target, register_target
from resa_core.atomic import torch_save_atomic


def write_mmseg(backbone: Backbone, out: Path) -> None:
    state_dict = {to_mmseg_vit(key): tensor for key, tensor in backbone.state_dict.items()}
    meta = {**provenance_of(backbone), "mmseg_backbone": mmseg_backbone_settings(backbone.arch)}
    torch_save_atomic(out, {"state_dict": state_dict, "meta": meta})


register_target(
    Target("mmseg", (".pth",), reader="mmseg", write=write_mmseg, needs_standard_stem=True,
           families=("resnet", "vit"), engine_check=check_mmseg)
)
