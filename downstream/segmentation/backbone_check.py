"""Strict backbone loading: 0 missing and 0 unexpected keys, or an error (mmengine only warns).

mmengine's ``PretrainedInit`` calls ``load_checkpoint(..., strict=False)`` and logs mismatches as
a warning, so a wrongly named file would train from random init unnoticed. Two checks close that:

- before training, :func:`check_backbone_keys` builds the config's backbone (the real mmseg
  module) and compares its state_dict keys and shapes with the converted file's;
- after mmengine initialised the model, :func:`check_backbone_loaded` compares the backbone's
  tensors with the file's, so an init_cfg that loaded nothing (e.g. a wrong ``prefix``) is caught.

``pos_embed`` may differ in shape: mmseg's VisionTransformer resizes it to the crop size.
"""

from __future__ import annotations

import copy
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


def check_backbone_loaded(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], path: str) -> None:
    """Raise UserError unless ``module`` holds ``state_dict``'s values (after mmengine's init_weights)."""
    differ = [
        key
        for key, value in module.state_dict().items()
        if key not in RESIZED_KEYS and not torch.equal(value.detach().cpu(), state_dict[key].to(value.dtype))
    ]
    if differ:
        raise UserError(
            f"{path}: mmengine did not load {len(differ)} of the backbone's tensors ({_names(differ)}); "
            "check model.backbone.init_cfg (its checkpoint and prefix)"
        )
