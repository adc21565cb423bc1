"""Strict backbone loading: 0 missing and 0 unexpected keys, or an error (mmengine only warns).

mmengine's ``PretrainedInit`` calls ``load_checkpoint(..., strict=False)`` and logs mismatches as
a warning, so a wrongly named file would train from random init unnoticed. Two checks close that:

- before training, :func:`check_backbone_keys` builds the config's backbone (the real mmseg
  module) and compares its state_dict keys and shapes with the converted file's;
- after mmengine initialised the model, :func:`check_backbone_loaded` compares the backbone's
  tensors with the file's, so an init_cfg that loaded nothing (e.g. a wrong ``prefix``) is caught.

``pos_embed`` may differ in shape: mmseg's VisionTransformer resizes it to the crop size
(``VisionTransformer.init_weights``: ``resize_pos_embed`` of the file's grid to
``img_size // patch_size``, its ``interpolate_mode``). Its loaded value is compared with the file's
``pos_embed`` resized the same way, so a run whose position embedding stayed random is caught.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch

from resa_core.errors import UserError

RESIZED_KEYS = ("pos_embed",)


def _names(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")


def build_backbone(backbone_cfg: Mapping) -> torch.nn.Module:
    """The mmseg backbone of ``backbone_cfg``, randomly initialised (init_cfg dropped)."""
    from mmseg.registry import MODELS

    cfg = copy.deepcopy(dict(backbone_cfg))
    cfg["init_cfg"] = None
    return MODELS.build(cfg)


def check_backbone_keys(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], path: str) -> int:
    """Raise UserError unless ``state_dict`` fills ``module`` exactly; returns the number of tensors."""
    expected = module.state_dict()
    missing, unexpected = expected.keys() - state_dict.keys(), state_dict.keys() - expected.keys()
    if missing or unexpected:
        raise UserError(
            f"{path}: does not fit the config's {type(module).__name__}: {len(missing)} missing keys "
            f"({_names(missing)}), {len(unexpected)} unexpected keys ({_names(unexpected)})"
        )
    wrong = [
        f"{key} {tuple(state_dict[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if key not in RESIZED_KEYS and state_dict[key].shape != value.shape
    ]
    if wrong:
        raise UserError(f"{path}: {len(wrong)} tensors have the wrong shape for the config's backbone: {wrong[:4]}")
    return len(expected)


def expected_value(module: torch.nn.Module, key: str, value: torch.Tensor) -> torch.Tensor:
    """The file's ``value`` as the module holds it after mmseg's init (``pos_embed`` resized to the crop)."""
    if key in RESIZED_KEYS and value.shape != getattr(module, key).shape:
        height, width = module.img_size
        side = math.isqrt(value.shape[1] - 1)
        return module.resize_pos_embed(value.float(), (height // module.patch_size, width // module.patch_size),
                                       (side, side), module.interpolate_mode)
    return value


def check_backbone_loaded(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], path: str) -> None:
    """Raise UserError unless ``module`` holds ``state_dict``'s values (after mmengine's init_weights)."""
    differ = []
    for key, value in module.state_dict().items():
        expected = expected_value(module, key, state_dict[key].detach().cpu())
        current = value.detach().cpu()
        if current.shape != expected.shape or not torch.equal(current, expected.to(current.dtype)):
            differ.append(key)
    if differ:
        raise UserError(
            f"{path}: mmengine did not load {len(differ)} of the backbone's tensors ({_names(differ)}); "
            "check model.backbone.init_cfg (its checkpoint and prefix)"
        )
