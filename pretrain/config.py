"""The pretrain config schema: every key a config file or override may set, with defaults.

Defaults are the ReSA paper's (Appendix B.2 "Universal settings", Table 8 CIFAR rows, SGD
momentum 0.9 as INTL); the presets under ``configs/pretrain/`` change what they name, one
Table 8 row per file. ``model.head`` ``auto`` picks the heads by the arch family: BN + ReLU
for ConvNets, no BN and GELU for ViTs (B.2).

The ``loss`` section is the chosen method's own (``Method.loss_defaults``, see
``pretrain/methods/base.py``): its keys and defaults depend on ``method``, and a key the method
does not declare is an error. ``augment.views: auto`` becomes the method's augmentation pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pretrain.methods import dsa_plugin, method_class
from resa_core.config import load_config, parse_overrides, read_yaml
from resa_core.errors import UserError

SCHEMA: dict = {
    "method": "resa",
    "variant": "paper",  # "official": the authors' released code (pretrain.methods.resa docstring)
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
        "num_workers": 0,  # DataLoader workers; never changes the batches (pretrain.data.loader)
        # >0: keep the CIFAR-100-LT exponential profile with this imbalance factor (pretrain.data.cifar_lt; 0.05 =
        # ReSA C.3's 1/20) of the train_size subset; 0: balanced
        "long_tail_ratio": 0.0,
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
        "blur_prob": 0.0,  # no blur at 32 px (solo-learn CIFAR configs); 0.5 on ImageNet (resa args.py)
        "solarization_prob": 0.0,  # 0.2 on ImageNet (resa args.py --solarization_prob)
        "num_small_crops": 0,  # multi-crop: N extra small crops (2x224 + N x 96)
        "small_crop_size": 96,
        "small_min_scale": 0.05,  # resa args.py example scales for multi-crop: (0.05, 0.25)
        "small_max_scale": 0.25,
        # auto: the method's pair (Method.default_views); weak_standard (ReSA) | symmetric | asymmetric
        "views": "auto",
        # asymmetric pair: view 2's blur/solarization (view 1 uses blur_prob/solarization_prob);
        # defaults: BYOL Table 6 view tau' (blur 0.1, solarization 0.2)
        "second_view": {"blur_prob": 0.1, "solarization_prob": 0.2},
    },
    "model": {
        "momentum_encoder": True,
        "momentum_base": 0.996,
        "momentum_final": 1.0,
        "projector_layers": 3,
        "projector_hidden_dim": 2048,
        "projector_out_dim": 512,
        "predictor": False,
        "predictor_hidden_dim": None,  # None: projector_hidden_dim (ReSA B.2); baselines set their own
        "head": "auto",  # auto | bn_relu (ConvNets) | gelu (ViT, BN-free)
        "sync_bn": True,  # under DDP, for ConvNets
        "freeze_patch_embed": True,  # ViT: MoCo v3's frozen random patch projection
        # ResNets: zero the last BN of each residual branch. The authors: on for ImageNet (winci-ai/resa
        # src/model.py:40), off for ResNet-18 on CIFAR (winci-ai/resa_cifar src/model.py:28-29).
        "zero_init_residual": False,
    },
    "loss": {},  # the method's own section (Method.loss_defaults): set below for the default method, by resolve()
    "optim": {
        "name": "sgd",
        "batch_size": 256,  # global batch (all ranks together)
        "base_lr": 0.3,
        "weight_decay": 1.0e-4,
        "momentum": 0.9,
        "betas": [0.9, 0.999],  # Adam, AdamW
        # LARS (solo-learn solo/utils/lars.py; its defaults: eta 1e-3, no lr clipping, no exclusion)
        "lars_eta": 1.0e-3,
        "lars_clip_lr": False,
        "lars_exclude_bias_n_norm": False,  # 1-D params (bias, BN): no LARS scaling and no weight decay
        "exclude_bias_n_norm_wd": False,  # solo-learn optimizer.exclude_bias_n_norm_wd: 1-D params get wd 0
        "warmup_epochs": 2,
        "warmup_start_lr": None,  # None: lr x (step+1)/warmup (ReSA); a float: solo-learn's linear ramp from it
        "min_lr_ratio": 0.1,  # ConvNets: cosine to 0.1 x lr (B.2)
        "min_lr": None,  # absolute floor; overrides min_lr_ratio (ViT: 1e-4 in the authors' code)
        "clip_grad": 0.0,  # 0: off
    },
    "run": {
        "num_threads": 0,  # 0: torch's default
        "log_every_steps": 10,
        "checkpoint_every_minutes": 10.0,
        # >0: stop (unfinished, exit 3) after this many steps *of this invocation*, unless the last of
        # them is the run's last step (then it finishes); for tests
        "max_steps": 0,
        "deterministic": False,
        "amp": "none",  # none | bf16 | fp16 (fp16 uses a GradScaler); Sinkhorn always in fp32
        "dtype": "float32",  # float64: the whole step in double, to compare reduction orders (tests)
        "channels_last": False,
        "compile": False,
        "dist_backend": "auto",  # auto: nccl on GPU, gloo on CPU
        "tensorboard": True,  # when the tensorboard package is installed
    },
    # DSA plug-in regulariser on any method (pretrain.methods.dsa_plugin; defaults: DSA Section VI-B)
    "dsa": dict(dsa_plugin.DEFAULTS),
    "monitor": {
        "every_epochs": 0,  # 0: off; else online k-NN and clustering metrics every N epochs
        "train_size": 2000,  # k-NN memory bank: a seeded class-balanced training subset
        "eval_size": 10000,  # held-out subset for k-NN and the clustering metrics (paper: 10k)
        "knn_k": 20,
        "knn_temperature": 0.07,
        "seed": 0,
    },
}

SCHEMA["loss"] = dict(method_class(SCHEMA["method"]).loss_defaults)

VIEW_PAIRS = ("weak_standard", "symmetric", "asymmetric")

CHOICES = {
    ("variant",): ("paper", "official"),
    ("augment", "views"): ("auto", *VIEW_PAIRS),
    ("optim", "name"): ("sgd", "adamw", "adam", "lars"),
    ("model", "head"): ("auto", "bn_relu", "gelu"),
    ("run", "amp"): ("none", "bf16", "fp16"),
    ("run", "dtype"): ("float32", "float64"),
    ("run", "dist_backend"): ("auto", "nccl", "gloo"),
}


def _get(config: dict, keys: tuple[str, ...]):
    for key in keys:
        config = config[key]
    return config


def _method_name(path: str | Path | None, overrides: Sequence[str]) -> str:
    """``method`` as the file (with its bases) and the overrides set it, before strict parsing."""
    name = SCHEMA["method"]
    for layer in (read_yaml(path) if path is not None else {}, parse_overrides(overrides)):
        name = layer.get("method", name)
    return str(name)


def resolve(path: str | Path | None, overrides: Sequence[str] = ()) -> dict:
    method = method_class(_method_name(path, overrides))
    config = load_config({**SCHEMA, "loss": method.loss_defaults}, path, overrides)
    source = (str(path) if path else "config") + (" with overrides" if overrides else "")
    for keys, allowed in CHOICES.items():
        value = _get(config, keys)
        if value not in allowed:
            raise UserError(f"{source}: {'.'.join(keys)} = {value!r}; expected one of {allowed}")
    if config["epochs"] < 1 or config["optim"]["batch_size"] < 2:
        raise UserError(f"{source}: epochs must be >= 1 and optim.batch_size >= 2")
    if config["run"]["dtype"] == "float64" and config["run"]["amp"] != "none":
        raise UserError(f"{source}: run.dtype = float64 with run.amp = {config['run']['amp']}; AMP needs float32")
    if not 0.0 <= config["data"]["long_tail_ratio"] <= 1.0:
        raise UserError(f"{source}: data.long_tail_ratio = {config['data']['long_tail_ratio']}; expected 0 (off) "
                        "or an imbalance factor in (0, 1]")
    if len(config["optim"]["betas"]) != 2:
        raise UserError(f"{source}: optim.betas = {config['optim']['betas']!r}; expected two floats")
    if config["augment"]["num_small_crops"] and not method.supports_multicrop:
        raise UserError(f"{source}: augment.num_small_crops = {config['augment']['num_small_crops']}: "
                        f"method '{config['method']}' takes exactly two views")
    if config["augment"]["views"] == "auto":
        config["augment"]["views"] = method.default_views
    method.check_config(config, source)
    dsa_plugin.check_config(config, source)
    return config
