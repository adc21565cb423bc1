"""The pretrain config schema: every key a config file or override may set, with defaults.

Defaults are the ReSA paper's (Appendix B.2, Table 8 CIFAR rows, SGD momentum 0.9 as INTL);
the demo and presets under ``configs/pretrain/`` change what they name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from resa_core.config import load_config
from resa_core.errors import UserError

SCHEMA: dict = {
    "method": "resa",
    "arch": "resnet18",
    "seed": 0,
    "epochs": 200,
    "output_dir": "runs/pretrain",
    "data": {
        "name": "fashion_mnist",
        "root": None,
        "train_size": 0,  # 0: the whole split
        "subset_seed": 0,
        "image_size": 32,
        "normalization": "fashion_mnist",
    },
    "augment": {
        "min_scale": 0.2,  # W-MSE/INTL CIFAR RandomResizedCrop scale (0.2, 1.0)
        "max_scale": 1.0,
        "color_jitter_prob": 0.8,
        "brightness": 0.4,
        "contrast": 0.4,
        "saturation": 0.2,
        "hue": 0.1,
        "grayscale_prob": 0.2,
        "blur_prob": 0.0,  # no blur at 32 px (solo-learn CIFAR configs)
        "solarization_prob": 0.0,
    },
    "model": {
        "momentum_encoder": True,
        "momentum_base": 0.996,
        "momentum_final": 1.0,
        "projector_layers": 3,
        "projector_hidden_dim": 2048,
        "projector_out_dim": 512,
        "predictor": False,
    },
    "loss": {
        "temperature": 0.4,
        "sinkhorn_eps": 0.05,
        "sinkhorn_iters": 3,
        "assignment_source": "encoding",  # or "embedding" (paper Figure 10)
    },
    "optim": {
        "name": "sgd",
        "batch_size": 256,
        "base_lr": 0.3,
        "weight_decay": 1.0e-4,
        "momentum": 0.9,
        "warmup_epochs": 2,
        "min_lr_ratio": 0.1,
    },
    "run": {
        "num_threads": 0,  # 0: torch's default
        "log_every_steps": 10,
        "checkpoint_every_minutes": 10.0,
        "max_steps": 0,  # >0: stop (unfinished, exit non-zero) after this many steps; for tests
        "deterministic": False,
    },
}

CHOICES = {
    ("loss", "assignment_source"): ("encoding", "embedding"),
    ("optim", "name"): ("sgd",),
}


def resolve(path: str | Path | None, overrides: Sequence[str] = ()) -> dict:
    config = load_config(SCHEMA, path, overrides)
    for (section, key), allowed in CHOICES.items():
        if config[section][key] not in allowed:
            raise UserError(f"{section}.{key} = {config[section][key]!r}; expected one of {allowed}")
    if config["epochs"] < 1 or config["optim"]["batch_size"] < 2:
        raise UserError("epochs must be >= 1 and optim.batch_size >= 2")
    return config
