"""MIRA presets carry the paper's values (Lee et al., NeurIPS 2022, Sec. 4.1, footnote 6, Table 7).

Kept in ``configs/pretrain/mira/`` (as ``baselines/``): ``configs/pretrain/*.yaml`` holds ReSA Table 8 only
(``tests/test_pretrain_presets.py``).
"""

import pytest
from conftest import repo_path

from pretrain.config import resolve

PAPER = {  # Sec. 4.1: K, tau_s, tau_t, beta, 30 fixed-point steps, d, projector hidden, EMA 0.99 -> 1
    ("loss", "num_prototypes"): 3000, ("loss", "student_temperature"): 0.1,
    ("loss", "teacher_temperature"): 0.225, ("loss", "beta"): 2 / 3, ("loss", "beta_initial"): 2 / 3,
    ("loss", "fixed_point_iters"): 30, ("model", "projector_out_dim"): 256,
    ("model", "projector_hidden_dim"): 2048, ("model", "momentum_base"): 0.99, ("model", "momentum_final"): 1.0,
}
IMAGENET = {  # Sec. 4.1 "Training details" and footnote 6 (400-epoch multi-crop run)
    ("arch",): "resnet50", ("epochs",): 400, ("optim", "name"): "lars", ("optim", "batch_size"): 4096,
    ("optim", "base_lr"): 0.075, ("optim", "weight_decay"): 1e-6, ("optim", "warmup_epochs"): 10,
    ("augment", "num_small_crops"): 6, ("augment", "small_crop_size"): 96, ("data", "image_size"): 224,
}
CIFAR = {  # Table 7 caption (1000 epochs), Sec. 4.3 (ResNet-18, 32 px, no multi-crop)
    ("arch",): "resnet18_cifar", ("epochs",): 1000, ("data", "name"): "cifar10", ("data", "image_size"): 32,
    ("augment", "num_small_crops"): 0,
}
CIFAR100 = {**CIFAR, ("data", "name"): "cifar100", ("data", "normalization"): "cifar100"}
IMAGENET100 = {  # Table 7 caption (400 epochs), Sec. 4.3 (ResNet-18 ImageNet stem, 256 px, no multi-crop)
    ("arch",): "resnet18", ("epochs",): 400, ("data", "name"): "imagenet100", ("data", "image_size"): 256,
    ("augment", "num_small_crops"): 0,
}


def lookup(config, path):
    for key in path:
        config = config[key]
    return config


@pytest.mark.parametrize(("preset", "expected"), [
    (repo_path("configs/pretrain/mira/mira_imagenet_resnet50.yaml"), {**PAPER, **IMAGENET}),
    (repo_path("configs/pretrain/mira/mira_cifar10_resnet18.yaml"), {**PAPER, **CIFAR}),
    (repo_path("configs/pretrain/mira/mira_cifar100_resnet18.yaml"), {**PAPER, **CIFAR100}),
    (repo_path("configs/pretrain/mira/mira_imagenet100_resnet18.yaml"), {**PAPER, **IMAGENET100}),
])
def test_preset_values_are_the_papers(preset, expected):
    config = resolve(preset, [])
    assert config["method"] == "mira"
    for path, value in expected.items():
        want = pytest.approx(value) if isinstance(value, float) else value
        assert lookup(config, path) == want, path
