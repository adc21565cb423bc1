"""A bare timm state_dict, ``.pth`` or ``.safetensors`` (huggingface/pytorch-image-models).

timm's ``VisionTransformer`` names (``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``, ``head``) are the
canonical ViT names; DINO's and MoCo v3's backbone-only ViT releases use them too. timm ResNets
share torchvision's names, so a bare ResNet is detected as torchvision and read here only with
``--from timm``. ``model.safetensors`` is what timm's Hugging Face hub entries hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from converters.sources import register_source
from converters.sources.base import Source
from converters.sources.torchvision_state_dict import read_bare_state_dict


def _detect(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and "patch_embed.proj.weight" in obj
        and all(isinstance(value, torch.Tensor) for value in obj.values())
    )


register_source(
    Source("timm", "timm state_dict, ViT or ResNet, .pth or .safetensors (+ optional <file>.json)",
           _detect, read_bare_state_dict)
)
