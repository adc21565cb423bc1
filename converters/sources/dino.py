"""DINO training checkpoints (facebookresearch/dino).

``main_dino.py`` saves ``{"student", "teacher", "optimizer", "epoch", "args", "dino_loss"}``; each
network is ``MultiCropWrapper(backbone, head)``, so encoder keys start with ``backbone.``; the
student is DDP-wrapped (``module.backbone.``) and so is the teacher of a ResNet (it has
BatchNorm). ``utils.py`` ``load_pretrained_weights`` strips ``module.`` and ``backbone.``; its
default ``checkpoint_key`` is the teacher, ours too. ViT keys (``vision_transformer.py``) are
timm's. Backbone-only releases (``dino_deitsmall16_pretrain.pth``) are bare and read as timm.
"""

from __future__ import annotations

from collections.abc import Mapping

from converters.sources.layout import Layout, Part, register_layout

register_layout(Layout(
    name="dino",
    description="DINO training checkpoint, ResNet or ViT (teacher / student, backbone.)",
    encoders={
        "teacher": Part((("teacher",),), ("backbone.", "module.backbone.")),
        "student": Part((("student",),), ("module.backbone.", "backbone.")),
    },
    default=("teacher", "student"),
    detect=lambda obj: isinstance(obj, Mapping)
    and isinstance(obj.get("teacher"), Mapping)
    and isinstance(obj.get("student"), Mapping),
    method="dino",
))
