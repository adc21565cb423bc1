"""MoCo v1/v2 and MoCo v3 training checkpoints.

MoCo v1/v2 (facebookresearch/moco ``main_moco.py`` ``save_checkpoint`` of
``{"epoch", "arch", "state_dict", "optimizer"}``; ``moco/builder.py`` names the encoders
``encoder_q`` (trained, online) and ``encoder_k`` (momentum); the DDP wrapper adds ``module.``).
``detection/convert-pretrain-to-detectron2.py`` and ``main_lincls.py`` take ``encoder_q``, so that
is the default here (as the issue's protocol says: MoCo's published transfer uses its online
encoder); ``--encoder momentum`` takes ``encoder_k``.

MoCo v3 (facebookresearch/moco-v3 ``main_moco.py`` saves the same dict; ``moco/builder.py`` names
them ``base_encoder`` / ``momentum_encoder``; ResNets are torchvision's with an MLP ``fc``, ViTs
``vits.py`` subclass timm's VisionTransformer with an MLP ``head``; ``main_lincls.py`` and
``convert_to_deit.py`` take ``base_encoder``, the default here for the same reason).
MoCo v3's ViT-S/16 has 12 heads (``vits.py`` ``vit_small``: ``num_heads=12``; its issue #7), not
the 6 of DINO's and timm's: a ViT-S read here is ``vit_small_patch16_12h``.
"""

from __future__ import annotations

from converters.sources.layout import Layout, Part, has_prefix, register_layout

_WRAPPED = (("state_dict",), ())


def _has(obj, prefix: str) -> bool:
    return any(has_prefix(obj, path, prefix) for path in _WRAPPED)


register_layout(Layout(
    name="mocov2",
    description="MoCo v1/v2 training checkpoint (module.encoder_q. / module.encoder_k.)",
    encoders={
        "momentum": Part(_WRAPPED, ("module.encoder_k.", "encoder_k.")),
        "online": Part(_WRAPPED, ("module.encoder_q.", "encoder_q.")),
    },
    default=("online", "momentum"),
    detect=lambda obj: _has(obj, "module.encoder_q.") or _has(obj, "encoder_q."),
    method="mocov2",
))

register_layout(Layout(
    name="mocov3",
    description="MoCo v3 training checkpoint, ResNet or ViT (module.base_encoder. / module.momentum_encoder.)",
    encoders={
        "momentum": Part(_WRAPPED, ("module.momentum_encoder.",)),
        "online": Part(_WRAPPED, ("module.base_encoder.",)),
    },
    default=("online", "momentum"),
    detect=lambda obj: _has(obj, "module.base_encoder."),
    method="mocov3",
    arch_variants={"vit_small_patch16": "vit_small_patch16_12h"},
))
