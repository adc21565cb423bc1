"""Every baseline preset resolves to solo-learn's published configuration for its method and dataset.

Expected values transcribed from vturrisi/solo-learn (commit 9187ea3)
``scripts/pretrain/{cifar,imagenet-100}/<method>.yaml`` (method_kwargs, momentum, optimizer),
the ``augmentations/*.yaml`` their defaults lists name, and the defaults of
``solo/methods/base.py`` (warmup_cosine: 10 epochs from 3e-5 to min_lr 0) and
``solo/args/pretrain.py`` (lr x global batch / 256, momentum 0.9).
"""

from pathlib import Path

import pytest
import torch
from conftest import repo_path

from pretrain.config import resolve
from pretrain.data.views import view_list
from pretrain.engine import build_model
from pretrain.optim import build_optimizer, schedule

PRESETS = Path(repo_path("configs/pretrain/baselines"))
LARS = ("lars", 0.02, True, True)  # name, eta, clip_lr, exclude_bias_n_norm
SGD = ("sgd",)
# method: {kind: (optimizer, base lr, wd, projector hidden/out, predictor hidden, momentum base/final, loss, augs)}
SOLO = {
    "simclr": {"cifar": (LARS, 0.4, 1e-4, (2048, 256), None, None, {"temperature": 0.2}, "symmetric"),
               "imagenet100": (LARS, 0.3, 1e-4, (4096, 512), None, None, {"temperature": 0.2}, "symmetric")},
    "mocov2plus": {
        "cifar": (SGD, 0.3, 1e-4, (2048, 256), None, (0.99, 0.999), {"temperature": 0.2, "queue_size": 32768},
                  "symmetric_weak"),
        "imagenet100": (SGD, 0.3, 1e-4, (2048, 256), None, (0.99, 0.999), {"temperature": 0.2, "queue_size": 65536},
                        "symmetric_weak")},
    "mocov3": {"cifar": (LARS, 0.3, 1e-6, (4096, 256), 4096, (0.99, 1.0), {"temperature": 0.2}, "asymmetric"),
               "imagenet100": (LARS, 0.3, 1e-6, (4096, 256), 4096, (0.99, 1.0), {"temperature": 0.2}, "asymmetric")},
    "byol": {"cifar": (LARS, 1.0, 1e-5, (4096, 256), 4096, (0.99, 1.0), {}, "asymmetric"),
             "imagenet100": (LARS, 0.5, 1e-6, (4096, 256), 8192, (0.99, 1.0), {}, "asymmetric")},
    "simsiam": {"cifar": (SGD, 0.5, 1e-5, (2048, 2048), 512, None, {}, "symmetric_weak"),
                "imagenet100": (SGD, 0.5, 1e-5, (2048, 2048), 512, None, {}, "asymmetric")},
    "dino": {"cifar": (LARS, 0.3, 1e-6, (2048, 256), None, (0.9995, 1.0),
                       {"num_prototypes": 4096, "warmup_teacher_temperature_epochs": 0}, "asymmetric"),
             "imagenet100": (LARS, 0.3, 1e-6, (2048, 256), None, (0.9995, 1.0),
                             {"num_prototypes": 4096, "warmup_teacher_temperature_epochs": 50}, "asymmetric")},
}
# augmentations/*.yaml: (jitter b, c, s, h), blur p, solarization p of view 1 and view 2.
AUGS = {
    "symmetric": ((0.8, 0.8, 0.8, 0.2), (0.5, 0.5), (0.0, 0.0)),
    "symmetric_weak": ((0.4, 0.4, 0.4, 0.1), (0.5, 0.5), (0.0, 0.0)),
    ("asymmetric", "cifar"): ((0.4, 0.4, 0.2, 0.1), (0.0, 0.0), (0.0, 0.2)),
    ("asymmetric", "imagenet100"): ((0.4, 0.4, 0.2, 0.1), (1.0, 0.1), (0.0, 0.2)),
}
CASES = [(method, dataset) for method in SOLO for dataset in ("cifar10", "cifar100", "imagenet100")]


def test_every_baseline_preset_file_is_covered():
    files = {p.stem for p in PRESETS.glob("*.yaml") if not p.stem.startswith("_")}
    from test_pretrain_batch_coupled_presets import CASES as OTHER_CASES  # SwAV ... INTL: their own test

    assert files == {f"{method}_{dataset}_resnet18" for method, dataset in [*CASES, *OTHER_CASES]}


@pytest.mark.parametrize("method, dataset", CASES)
def test_preset_holds_solo_learns_published_values(method, dataset):
    config = resolve(PRESETS / f"{method}_{dataset}_resnet18.yaml")
    kind = "imagenet100" if dataset == "imagenet100" else "cifar"
    optimizer, base_lr, wd, projector, predictor, momentum, loss, augs = SOLO[method][kind]
    optim, model = config["optim"], config["model"]
    assert config["method"] == method and config["data"]["name"] == dataset
    # Table 1 protocol: CIFAR ResNet-18 (CIFAR stem) 32 px 1000 epochs batch 256; ImageNet-100 ResNet-18 224 px
    # 400 epochs, solo-learn's 2 GPUs x 128.
    expected_run = ("resnet18_cifar", 32, 1000, 256) if kind == "cifar" else ("resnet18", 224, 400, 256)
    assert (config["arch"], config["data"]["image_size"], config["epochs"], optim["batch_size"]) == expected_run
    assert optim["name"] == optimizer[0]
    if optimizer[0] == "lars":
        assert (optim["lars_eta"], optim["lars_clip_lr"], optim["lars_exclude_bias_n_norm"]) == optimizer[1:]
    assert optim["base_lr"] == pytest.approx(base_lr) and optim["weight_decay"] == pytest.approx(wd)
    assert optim["momentum"] == 0.9 and not optim["exclude_bias_n_norm_wd"]
    assert (model["projector_hidden_dim"], model["projector_out_dim"]) == projector
    assert model["predictor_hidden_dim"] == predictor
    if momentum is not None:
        assert (model["momentum_base"], model["momentum_final"]) == momentum
    assert {key: config["loss"][key] for key in loss} == loss
    # warmup_cosine: 10 epochs from 3e-5 (per step), peak base_lr x 256 / 256, cosine to 0.
    steps = 10
    lr_at = schedule(optim, steps, config["epochs"])
    assert lr_at(0) == pytest.approx(3e-5) and lr_at(10 * steps) == pytest.approx(base_lr)
    assert lr_at(config["epochs"] * steps) == pytest.approx(0.0, abs=1e-12)
    # Augmentations: crop scale 0.08-1 and the named pair.
    jitter, blur, solarization = AUGS[augs if augs != "asymmetric" else (augs, kind)]
    first, second = view_list(config)
    for view, b, s in ((first, blur[0], solarization[0]), (second, blur[1], solarization[1])):
        assert (view.min_scale, view.max_scale, view.color_jitter_prob, view.grayscale_prob) == (0.08, 1.0, 0.8, 0.2)
        assert (view.brightness, view.contrast, view.saturation, view.hue) == jitter
        assert (view.blur_prob, view.solarization_prob) == (b, s)
        assert view.crop_size == expected_run[1]


@pytest.mark.parametrize("method", list(SOLO))
def test_preset_builds_the_published_heads_and_optimizer(method):
    small = ["loss.num_prototypes=64"] if method == "dino" else []  # a cheaper prototype layer
    config = resolve(PRESETS / f"{method}_cifar10_resnet18.yaml", small)
    model = build_model(config, torch.device("cpu"))
    linears = [m for m in model.projector if type(m).__name__ == "Linear"]
    hidden, out = SOLO[method]["cifar"][3]
    assert linears[0].in_features == 512 and linears[0].out_features == hidden
    assert linears[-1].out_features == out
    optimizer = build_optimizer(model.param_groups(), config["optim"])
    assert type(optimizer).__name__ == {"lars": "LARS", "sgd": "SGD"}[config["optim"]["name"]]
    n_params = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
    assert n_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    if method == "simsiam":  # the predictor keeps the peak lr (solo-learn static_lr)
        assert [bool(group.get("static_lr")) for group in optimizer.param_groups] == [False, True]


@pytest.mark.parametrize("preset, override, message", [
    ("simclr_cifar10", "loss.queue_size=5", "unknown config key 'loss.queue_size' (known keys here: temperature)"),
    ("mocov2plus_cifar10", "loss.queue_size=100", "queue_size 100 is not a multiple of optim.batch_size 256"),
    ("simsiam_cifar10", "augment.num_small_crops=2", "method 'simsiam' takes exactly two views"),
    ("byol_cifar10", "augment.views=sideways", "augment.views = 'sideways'"),
])
def test_a_methods_config_errors_name_the_key(preset, override, message):
    from resa_core.errors import UserError

    with pytest.raises(UserError) as error:
        resolve(PRESETS / f"{preset}_resnet18.yaml", [override])
    assert message in str(error.value)


def test_table12_weak_augmentation_is_one_override():
    """ReSA Table 12: a baseline with ReSA's weak view as view 1 (crop + flip only)."""
    config = resolve(PRESETS / "mocov3_imagenet100_resnet18.yaml", ["augment.views=weak_standard"])
    weak, standard = view_list(config)
    assert (weak.color_jitter_prob, weak.grayscale_prob, weak.blur_prob, weak.solarization_prob) == (0, 0, 0, 0)
    assert standard.color_jitter_prob == 0.8 and standard.blur_prob == 1.0
