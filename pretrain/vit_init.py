"""MoCo v3's ViT initialisation, which the ReSA paper adopts for ViT-S/16 (Appendix B.2).

From MoCo v3 (Chen et al., 2021; facebookresearch/moco-v3 ``vits.py``), applied to a timm
ViT so the keys stay timm's: fixed 2-D sin-cos position embedding (temperature 10000, a zero
vector for [CLS]); Linear layers Xavier-uniform except ``qkv``, whose bound treats q, k, v as
three separate matrices; zero biases; [CLS] token normal(std 1e-6); the patch projection
uniform with the Xavier bound of a ``(3 * p * p) -> dim`` linear map, and frozen
(``freeze_patch_embed``, MoCo v3's "random patch projection" for stability).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sincos_position_embedding(grid: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """``(1, 1 + grid*grid, dim)``: MoCo v3's ``build_2d_sincos_position_embedding`` with a zero [CLS] row."""
    if dim % 4:
        raise ValueError("embed dim must be divisible by 4 for the 2-D sin-cos position embedding")
    coords = torch.arange(grid, dtype=torch.float32)
    grid_w, grid_h = torch.meshgrid(coords, coords, indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    out_w = grid_w.flatten()[:, None] * omega[None]
    out_h = grid_h.flatten()[:, None] * omega[None]
    pe = torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)
    return torch.cat([torch.zeros(1, dim), pe])[None]


@torch.no_grad()
def mocov3_init(vit: nn.Module, freeze_patch_embed: bool = True) -> nn.Module:
    """Re-initialise a timm ``VisionTransformer`` in place as MoCo v3 does."""
    for name, module in vit.named_modules():
        if isinstance(module, nn.Linear):
            if "qkv" in name:
                bound = math.sqrt(6.0 / float(module.weight.shape[0] // 3 + module.weight.shape[1]))
                nn.init.uniform_(module.weight, -bound, bound)
            else:
                nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    grid = vit.patch_embed.grid_size[0]
    vit.pos_embed.copy_(sincos_position_embedding(grid, vit.embed_dim))
    vit.pos_embed.requires_grad_(False)
    nn.init.normal_(vit.cls_token, std=1e-6)
    proj = vit.patch_embed.proj
    bound = math.sqrt(6.0 / float(3 * proj.kernel_size[0] * proj.kernel_size[1] + vit.embed_dim))
    nn.init.uniform_(proj.weight, -bound, bound)
    nn.init.zeros_(proj.bias)
    if freeze_patch_embed:
        proj.requires_grad_(False)
    return vit
