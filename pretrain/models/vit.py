"""ViT-S/16 as a feature encoder, in timm naming (DESIGN.md contract 2).

``timm.create_model("vit_small_patch16_224", num_classes=0)``: 12 blocks, width 384, 6 heads,
[CLS]-token output after the final norm, the ViT-S/16 of MoCo v3, DINO and the ReSA paper
(Table 2/8). ``dynamic_img_size`` interpolates the position embedding for other input
sizes (multi-crop's 96 px views); it adds no parameters, so the keys stay timm's.
Training-specific initialisation (MoCo v3's, ``pretrain.vit_init``) belongs to pretraining.
"""

from __future__ import annotations

import timm
from torch import nn

from pretrain.models import register_arch


@register_arch("vit_small_patch16", family="vit", feature_dim=384)
def build_vit_small_patch16() -> nn.Module:
    return timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0, dynamic_img_size=True)
