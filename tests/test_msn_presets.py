"""MSN / PMSN presets (configs/pretrain/pmsn/) carry the papers' and the reference config's values.

PMSN = Assran et al., ICLR 2023 (App. D.1, E.1.2, Sec. 5.2); reference = facebookresearch/msn
``configs/pretrain/msn_vits16.yaml`` and ``src/`` (commit 4388dc1).
"""

from pathlib import Path

import pytest

from pretrain.config import resolve

PRESETS = Path(__file__).resolve().parents[1] / "configs/pretrain/pmsn"

COMMON = {  # App. D.1 / E.1.2: temperature 0.1, sharpening 0.25, 10 focal views, AdamW, clipping 3.0, 15 warm-up
    ("loss", "temperature"): 0.1, ("loss", "sharpen"): 0.25, ("augment", "num_small_crops"): 10,
    ("optim", "name"): "adamw", ("optim", "clip_grad"): 3.0, ("optim", "warmup_epochs"): 15,
    # reference: focal 96 px, crops (0.3, 1) / (0.05, 0.3), jitter strength 0.5, blur 0.5, head 2048-256,
    # EMA 0.996 -> 1, Sinkhorn on, start lr 2e-4, final lr 1e-6, wd 0.04, lr 1e-3 at batch 1024
    ("augment", "small_crop_size"): 96, ("augment", "min_scale"): 0.3, ("augment", "small_max_scale"): 0.3,
    ("augment", "small_min_scale"): 0.05, ("augment", "brightness"): 0.4, ("augment", "saturation"): 0.4,
    ("augment", "hue"): 0.1, ("augment", "blur_prob"): 0.5, ("augment", "solarization_prob"): 0.0,
    ("model", "projector_hidden_dim"): 2048, ("model", "projector_out_dim"): 256,
    ("model", "momentum_base"): 0.996, ("model", "momentum_final"): 1.0, ("loss", "use_sinkhorn"): True,
    ("loss", "sinkhorn_iters"): 3, ("optim", "warmup_start_lr"): 2e-4, ("optim", "min_lr"): 1e-6,
    ("optim", "weight_decay"): 0.04, ("optim", "base_lr"): 2.5e-4, ("data", "image_size"): 224,
}
MSN_VITS16 = {  # msn_vits16.yaml: deit_small, 800 epochs, 64 x 16 GPUs, 1024 prototypes, me-max 1, patch_drop 0.15
    ("method",): "msn", ("arch",): "vit_small_patch16", ("epochs",): 800, ("optim", "batch_size"): 1024,
    ("loss", "num_prototypes"): 1024, ("loss", "prior_weight"): 1.0, ("loss", "mask_ratio"): 0.15,
}
VITB16 = {  # App. D.1: ViT-B/16, 300 epochs, batch 1024, 1024 prototypes, entropy coefficient 1.0, masking 0.5
    ("arch",): "vit_base_patch16", ("epochs",): 300, ("optim", "batch_size"): 1024,
    ("loss", "num_prototypes"): 1024, ("loss", "prior_weight"): 1.0, ("loss", "mask_ratio"): 0.5,
}
INAT_VITS16 = {  # App. E.1.2: ViT-S/16, batch 4096, 300 epochs, 8142 prototypes, coefficient 5.0, masking 0.15
    ("method",): "pmsn", ("arch",): "vit_small_patch16", ("epochs",): 300, ("optim", "batch_size"): 4096,
    ("loss", "num_prototypes"): 8142, ("loss", "prior_weight"): 5.0, ("loss", "mask_ratio"): 0.15,
    ("loss", "prior_tau"): 0.25, ("data", "name"): "imagefolder",
}


def lookup(config, path):
    for key in path:
        config = config[key]
    return config


@pytest.mark.parametrize(("preset", "expected"), [
    ("msn_imagenet_vit_small.yaml", {**COMMON, **MSN_VITS16}),
    ("msn_imagenet_vit_base.yaml", {**COMMON, **VITB16, ("method",): "msn"}),
    ("pmsn_imagenet_vit_base.yaml", {**COMMON, **VITB16, ("method",): "pmsn", ("loss", "prior_tau"): 0.25}),
    ("pmsn_inat18_vit_small.yaml", {**COMMON, **INAT_VITS16}),
])
def test_preset_values_are_the_papers(preset, expected):
    config = resolve(PRESETS / preset, [])
    for path, value in expected.items():
        want = pytest.approx(value) if isinstance(value, float) else value
        assert lookup(config, path) == want, path


def test_tiny_preset_keeps_the_protocol_constants():
    config = resolve(PRESETS / "pmsn_tiny_fmnist.yaml", [])
    for path in [("loss", "temperature"), ("loss", "sharpen"), ("loss", "sinkhorn_iters"), ("loss", "prior_weight"),
                 ("loss", "use_sinkhorn"), ("model", "momentum_base"), ("optim", "clip_grad")]:
        assert lookup(config, path) == lookup(resolve(PRESETS / "msn_imagenet_vit_small.yaml", []), path)
    assert (config["method"], config["loss"]["prior_tau"]) == ("pmsn", 0.25)
