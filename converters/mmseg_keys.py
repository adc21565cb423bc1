"""timm ViT key names <-> MMSegmentation ``VisionTransformer`` key names (ResNet names are shared).

The forward direction is open-mmlab/mmsegmentation ``tools/model_converters/vit2mmseg.py``:
``norm.`` -> ``ln1.`` (mmseg's final norm), ``patch_embed.proj`` -> ``patch_embed.projection``,
and inside ``blocks.N`` -> ``layers.N``: ``normK`` -> ``lnK``, ``mlp.fc1`` -> ``ffn.layers.0.0``,
``mlp.fc2`` -> ``ffn.layers.1``, ``attn.qkv.`` -> ``attn.attn.in_proj_`` (nn.MultiheadAttention),
``attn.proj`` -> ``attn.attn.out_proj`` (mmseg ``mmseg/models/backbones/vit.py``
``TransformerEncoderLayer``). ``cls_token`` and ``pos_embed`` keep their names and shapes.
"""

from __future__ import annotations

_BLOCK_RULES = (
    ("norm1.", "ln1."),
    ("norm2.", "ln2."),
    ("mlp.fc1.", "ffn.layers.0.0."),
    ("mlp.fc2.", "ffn.layers.1."),
    ("attn.qkv.", "attn.attn.in_proj_"),
    ("attn.proj.", "attn.attn.out_proj."),
)


def is_vit_key(key: str) -> bool:
    return key.startswith(("blocks.", "patch_embed.", "cls_token", "pos_embed"))


def to_mmseg_vit(key: str) -> str:
    """``blocks.3.attn.qkv.weight`` -> ``layers.3.attn.attn.in_proj_weight`` (vit2mmseg.py's rules)."""
    if key.startswith("norm."):
        return "ln1." + key[len("norm."):]
    if key.startswith("patch_embed.proj."):
        return "patch_embed.projection." + key[len("patch_embed.proj."):]
    if key.startswith("blocks."):
        _, index, rest = key.split(".", 2)
        for old, new in _BLOCK_RULES:
            if rest.startswith(old):
                rest = new + rest[len(old):]
                break
        return f"layers.{index}.{rest}"
    return key


def from_mmseg_vit(key: str) -> str:
    """The inverse of :func:`to_mmseg_vit`."""
    if key.startswith("ln1."):
        return "norm." + key[len("ln1."):]
    if key.startswith("patch_embed.projection."):
        return "patch_embed.proj." + key[len("patch_embed.projection."):]
    if key.startswith("layers."):
        _, index, rest = key.split(".", 2)
        for old, new in _BLOCK_RULES:
            if rest.startswith(new):
                rest = old + rest[len(new):]
                break
        return f"blocks.{index}.{rest}"
    return key
