"""Optimisers (SGD, AdamW, LARS), parameter groups and the per-step learning rate.

ReSA (Table 8, B.2): SGD momentum 0.9 (INTL's settings) for ConvNets, AdamW (betas
0.9/0.999, MoCo v3's) for ViT-S/16. Baselines: LARS as solo-learn (``pretrain.lars``, momentum
0.9 as ``solo/args/pretrain.py`` sets it for sgd and lars). lr = base_lr x batch / 256 with the
global batch (solo-learn ``solo/args/pretrain.py``: lr x batch_size x devices x nodes / 256);
linear warm-up, then cosine decay to ``optim.min_lr`` when set (1e-4 for ViTs in the ReSA
authors' code, 0 in solo-learn), else to ``min_lr_ratio`` x lr (0.1 for ConvNets, B.2).

Groups come from the method (``Method.param_groups``); ``static_lr`` groups stay at the peak lr
(solo-learn's SimSiam predictor); ``optim.exclude_bias_n_norm_wd`` moves every 1-D parameter to
a twin group with weight decay 0 (solo-learn ``solo/utils/misc.py::remove_bias_and_norm_from_weight_decay``).
"""

from __future__ import annotations

import torch

from pretrain.lars import LARS
from pretrain.schedules import lr_at, peak_lr


def split_bias_and_norm(groups: list[dict]) -> list[dict]:
    """Each group's 1-D parameters (biases, norms) into a twin group with ``weight_decay`` 0."""
    out = []
    for group in groups:
        decay = [p for p in group["params"] if p.ndim > 1]
        no_decay = [p for p in group["params"] if p.ndim <= 1]
        options = {k: v for k, v in group.items() if k != "params"}
        if decay:
            out.append({**options, "params": decay})
        if no_decay:
            out.append({**options, "params": no_decay, "weight_decay": 0.0})
    return out


def build_optimizer(params, optim_cfg: dict) -> torch.optim.Optimizer:
    """``params``: tensors or the method's group dicts."""
    lr = peak_lr(optim_cfg["base_lr"], optim_cfg["batch_size"])
    groups = list(params)
    if groups and not isinstance(groups[0], dict):
        groups = [{"params": groups}]
    if optim_cfg["exclude_bias_n_norm_wd"]:
        groups = split_bias_and_norm(groups)
    wd = optim_cfg["weight_decay"]
    if optim_cfg["name"] == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(optim_cfg["betas"]), weight_decay=wd)
    if optim_cfg["name"] == "adam":  # L2 weight decay (W-MSE, CW-RGP; solo-learn's "adam")
        return torch.optim.Adam(groups, lr=lr, betas=tuple(optim_cfg["betas"]), weight_decay=wd)
    if optim_cfg["name"] == "lars":
        return LARS(groups, lr=lr, momentum=optim_cfg["momentum"], weight_decay=wd, eta=optim_cfg["lars_eta"],
                    clip_lr=optim_cfg["lars_clip_lr"], exclude_bias_n_norm=optim_cfg["lars_exclude_bias_n_norm"])
    return torch.optim.SGD(groups, lr=lr, momentum=optim_cfg["momentum"], weight_decay=wd)


def schedule(optim_cfg: dict, steps_per_epoch: int, epochs: int):
    """``step -> lr`` for the whole run."""
    peak = peak_lr(optim_cfg["base_lr"], optim_cfg["batch_size"])
    floor = optim_cfg["min_lr"] if optim_cfg["min_lr"] is not None else peak * optim_cfg["min_lr_ratio"]
    total, warmup = epochs * steps_per_epoch, optim_cfg["warmup_epochs"] * steps_per_epoch
    start = optim_cfg["warmup_start_lr"]
    return lambda step: lr_at(step, total, warmup, peak, floor, start)


def set_lr(optimizer: torch.optim.Optimizer, lr: float, peak: float) -> None:
    """Scheduled lr on every group, the peak lr on ``static_lr`` groups."""
    for group in optimizer.param_groups:
        group["lr"] = peak if group.get("static_lr") else lr
