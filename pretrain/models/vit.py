"""ViT-S/16 as a feature encoder, in timm naming (DESIGN.md contract 2).

``timm.create_model("vit_small_patch16_224", num_classes=0)``: 12 blocks, width 384, 6 heads,
[CLS]-token output after the final norm, the ViT-S/16 of DINO and the ReSA paper (Table 2/8).
``vit_small_patch16_12h`` is MoCo v3's ViT-S/16, the same but with 12 heads
(facebookresearch/moco-v3 ``vits.py`` ``vit_small``: ``num_heads=12``, qkv bias, LayerNorm
eps 1e-6); its weights have the same shapes, so only a source format or sidecar that says so
(the MoCo v3 reader) names it. ``dynamic_img_size`` interpolates the position embedding for other input
sizes (multi-crop's 96 px views); it adds no parameters, so the keys stay timm's.
``vit_base_patch16`` is ViT-B/16 (12 blocks, width 768, 12 heads; MSN's ``deit_base``, the
PMSN paper's App. D.1 ImageNet model); the converters know no MMSegmentation settings for it.
Training-specific initialisation (MoCo v3's, ``pretrain.vit_init``) belongs to pretraining.
"""

from __future__ import annotations

import timm
from torch import nn

from pretrain.models import register_arch


@register_arch("vit_small_patch16", family="vit", feature_dim=384)
def build_vit_small_patch16() -> nn.Module:
    return timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0, dynamic_img_size=True)


@register_arch("vit_small_patch16_12h", family="vit", feature_dim=384)
def build_vit_small_patch16_12h() -> nn.Module:
    return timm.create_model(
        "vit_small_patch16_224", pretrained=False, num_classes=0, dynamic_img_size=True, num_heads=12
    )


@register_arch("vit_base_patch16", family="vit", feature_dim=768)
def build_vit_base_patch16() -> nn.Module:
    return timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, dynamic_img_size=True)
