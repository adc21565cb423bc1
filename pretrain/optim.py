"""Optimisers of Table 8 (ReSA paper Appendix B.2) and the per-step learning rate.

ConvNets: SGD, momentum 0.9 (INTL's settings, which B.2 says ReSA follows). ViT-S/16: AdamW
(betas 0.9/0.999, MoCo v3's). lr = base_lr x batch / 256 with the global batch; linear
warm-up, then cosine decay to ``optim.min_lr`` when set (1e-4 for ViTs, the authors' code),
else to ``min_lr_ratio`` x lr (0.1 for ConvNets, B.2).
"""

from __future__ import annotations

import torch

from pretrain.schedules import lr_at, peak_lr


def build_optimizer(params, optim_cfg: dict) -> torch.optim.Optimizer:
    lr = peak_lr(optim_cfg["base_lr"], optim_cfg["batch_size"])
    if optim_cfg["name"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(optim_cfg["betas"]), weight_decay=optim_cfg["weight_decay"])
    return torch.optim.SGD(params, lr=lr, momentum=optim_cfg["momentum"], weight_decay=optim_cfg["weight_decay"])


def schedule(optim_cfg: dict, steps_per_epoch: int, epochs: int):
    """``step -> lr`` for the whole run."""
    peak = peak_lr(optim_cfg["base_lr"], optim_cfg["batch_size"])
    floor = optim_cfg["min_lr"] if optim_cfg["min_lr"] is not None else peak * optim_cfg["min_lr_ratio"]
    total, warmup = epochs * steps_per_epoch, optim_cfg["warmup_epochs"] * steps_per_epoch
    return lambda step: lr_at(step, total, warmup, peak, floor)
