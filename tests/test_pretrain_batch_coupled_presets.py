"""SwAV, DeepCluster-v2, Barlow Twins, VICReg, W-MSE (solo-learn), CW-RGP and INTL (their authors) presets hold
the published values.

Expected values transcribed from vturrisi/solo-learn (commit 9187ea3)
``scripts/pretrain/{cifar,imagenet-100}/{swav,deepclusterv2,barlow,vicreg,wmse}.yaml`` and the augmentations
they name, winci-ai/CW-RGP ``scripts/base.sh`` + ``base/cfg.py`` and winci-ai/INTL
``scripts/{cifar10,cifar100,in100}.sh`` + ``cfg.py`` / ``cifar/cfg.py``.
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
DATASETS = ("cifar10", "cifar100", "imagenet100")
LARS = ("lars", 0.02, True, True)  # name, eta, clip_lr, exclude_bias_n_norm (optimizer.kwargs)
# kind -> (optimizer, batch, base lr, wd, (hidden, out), loss values, warm-up (epochs, start lr, end lr / peak))
SOLO_SCHEDULE = (10, 3e-5, 0.0)  # solo/methods/base.py warmup_cosine defaults
EXPECTED = {
    ("swav", "cifar"): (LARS, 256, 0.6, 1e-6, (2048, 128), {"num_prototypes": 3000, "temperature": 0.1,
                        "queue_size": 3840, "epoch_queue_starts": 50, "freeze_prototypes_epochs": 2}, SOLO_SCHEDULE),
    # scheduler: warmup_epochs 11, warmup_start_lr 0.0, min_lr 0.0006 (absolute) = 0.001 x the peak 0.6
    ("deepclusterv2", "cifar"): (LARS, 256, 0.6, 1e-6, (2048, 128), {"num_prototypes": [3000, 3000, 3000],
                                 "temperature": 0.1, "kmeans_iters": 10}, (11, 0.0, 0.001)),
    ("barlow_twins", "cifar"): (LARS, 256, 0.3, 1e-4, (2048, 2048), {"scale": 0.1, "lambd": 0.0051}, SOLO_SCHEDULE),
    ("vicreg", "cifar"): (LARS, 256, 0.3, 1e-4, (2048, 2048), {"sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0},
                          SOLO_SCHEDULE),
    ("wmse", "cifar"): (("adam",), 256, 2e-3, 1e-6, (1024, 64), {"w_size": 128, "w_iter": 1}, (10, 0.0, 0.0)),
    ("cwrgp", "cifar10"): (("adam",), 256, 3e-3, 1e-6, (1024, 512), {"w_size": 64, "group": 4, "w_iter": 4, "axis": 0},
                           (3, None, 0.04)),
    ("cwrgp", "cifar100"): (("adam",), 256, 3e-3, 1e-6, (1024, 512), {"w_size": 64, "group": 4, "w_iter": 1,
                                                                       "axis": 0}, (3, None, 0.04)),
    ("intl", "cifar"): (("sgd",), 256, 0.3, 1e-4, (2048, 2048), {"iters": 4, "axis": 0}, (2, None, 0.001)),
    ("intl", "imagenet100"): (("sgd",), 128, 0.5, 2.5e-5, (4096, 8192), {"iters": 4, "axis": 0}, (2, None, 0.001)),
}
# solo-learn: the ImageNet-100 files repeat the CIFAR values
for method in ("swav", "deepclusterv2", "barlow_twins", "vicreg", "wmse"):
    EXPECTED[(method, "imagenet100")] = EXPECTED[(method, "cifar")]
EXPECTED[("cwrgp", "imagenet100")] = EXPECTED[("cwrgp", "cifar100")]
# (views, min scale, jitter (b, c, s, h), grayscale p, blur p (view 1, 2), solarization p (view 1, 2), small crops)
AUGS = {
    ("swav", "cifar"): ("symmetric", 0.08, (0.8, 0.8, 0.8, 0.2), 0.2, (0.5, 0.5), (0.0, 0.0), 0),
    ("barlow_twins", "cifar"): ("asymmetric", 0.08, (0.4, 0.4, 0.2, 0.1), 0.2, (0.0, 0.0), (0.0, 0.2), 0),
    ("barlow_twins", "imagenet100"): ("asymmetric", 0.08, (0.4, 0.4, 0.2, 0.1), 0.2, (1.0, 0.1), (0.0, 0.2), 0),
    ("vicreg", "cifar"): ("symmetric", 0.2, (0.4, 0.4, 0.2, 0.1), 0.2, (0.0, 0.0), (0.1, 0.1), 0),
    ("vicreg", "imagenet100"): ("symmetric", 0.2, (0.4, 0.4, 0.2, 0.1), 0.2, (0.5, 0.5), (0.1, 0.1), 0),
    ("wmse", "cifar"): ("symmetric", 0.2, (0.8, 0.8, 0.8, 0.2), 0.2, (0.0, 0.0), (0.0, 0.0), 0),
    ("wmse", "imagenet100"): ("symmetric", 0.2, (0.8, 0.8, 0.8, 0.2), 0.2, (0.2, 0.2), (0.0, 0.0), 6),
    ("cwrgp", "cifar"): ("symmetric", 0.2, (0.4, 0.4, 0.4, 0.1), 0.1, (0.0, 0.0), (0.0, 0.0), 0),
    ("cwrgp", "imagenet100"): ("symmetric", 0.2, (0.4, 0.4, 0.4, 0.1), 0.1, (0.5, 0.5), (0.0, 0.0), 0),
    ("intl", "cifar"): ("asymmetric", 0.08, (0.4, 0.4, 0.2, 0.1), 0.2, (0.0, 0.0), (0.0, 0.2), 0),
    ("intl", "imagenet100"): ("asymmetric", 0.08, (0.4, 0.4, 0.2, 0.1), 0.2, (1.0, 0.1), (0.0, 0.2), 0),
}
AUGS[("swav", "imagenet100")] = AUGS[("swav", "cifar")]
AUGS[("deepclusterv2", "cifar")] = AUGS[("deepclusterv2", "imagenet100")] = AUGS[("swav", "cifar")]  # symmetric.yaml
METHODS = ("swav", "deepclusterv2", "barlow_twins", "vicreg", "wmse", "cwrgp", "intl")
CASES = [(method, dataset) for method in METHODS for dataset in DATASETS]


def lookup(table, method, dataset):
    kind = "imagenet100" if dataset == "imagenet100" else "cifar"
    return table.get((method, dataset)) or table[(method, kind)]


@pytest.mark.parametrize("method, dataset", CASES)
def test_preset_holds_the_published_values(method, dataset):
    config = resolve(PRESETS / f"{method}_{dataset}_resnet18.yaml")
    optimizer, batch, base_lr, wd, projector, loss, (warmup, start, end) = lookup(EXPECTED, method, dataset)
    optim, model = config["optim"], config["model"]
    assert config["method"] == method and config["data"]["name"] == dataset
    cifar = dataset != "imagenet100"
    assert (config["arch"], config["data"]["image_size"], config["epochs"]) == (
        ("resnet18_cifar", 32, 1000) if cifar else ("resnet18", 224, 400))
    assert optim["batch_size"] == batch and optim["name"] == optimizer[0]
    if optimizer[0] == "lars":
        assert (optim["lars_eta"], optim["lars_clip_lr"], optim["lars_exclude_bias_n_norm"]) == optimizer[1:]
    assert optim["base_lr"] == pytest.approx(base_lr) and optim["weight_decay"] == pytest.approx(wd)
    assert (model["projector_hidden_dim"], model["projector_out_dim"]) == projector
    assert {key: config["loss"][key] for key in loss} == loss
    steps = 10
    lr_at = schedule(optim, steps, config["epochs"])
    peak = base_lr * batch / 256
    assert lr_at(warmup * steps) == pytest.approx(peak)
    assert lr_at(0) == pytest.approx(start if start is not None else peak / (warmup * steps))
    assert lr_at(config["epochs"] * steps) == pytest.approx(end * peak, abs=1e-12)
    views, min_scale, jitter, gray, blur, solarization, small = lookup(AUGS, method, dataset)
    assert config["augment"]["views"] == views
    crops = view_list(config)
    assert len(crops) == 2 + small
    for i, view in enumerate(crops):
        assert (view.min_scale, view.max_scale) == (min_scale, 1.0)
        assert (view.color_jitter_prob, view.grayscale_prob) == (0.8, gray)
        assert (view.brightness, view.contrast, view.saturation, view.hue) == jitter
        assert (view.blur_prob, view.solarization_prob) == (blur[min(i, 1)], solarization[min(i, 1)])
        assert view.crop_size == ((32 if cifar else 224) if i < 2 else 96)


def test_intl_imagenet100_excludes_biases_and_norms_from_weight_decay():
    # winci-ai/INTL main.py: 1-D parameters in a weight_decay 0 group; cifar/main.py decays all
    assert resolve(PRESETS / "intl_imagenet100_resnet18.yaml")["optim"]["exclude_bias_n_norm_wd"]
    assert not resolve(PRESETS / "intl_cifar10_resnet18.yaml")["optim"]["exclude_bias_n_norm_wd"]


@pytest.mark.parametrize("method", METHODS)
def test_preset_builds_its_heads_and_optimizer(method):
    small = {"swav": ["loss.num_prototypes=64"], "deepclusterv2": ["loss.num_prototypes=[64,64,64]"]}.get(
        method, [])  # a cheaper prototype layer
    config = resolve(PRESETS / f"{method}_cifar10_resnet18.yaml", small)
    model = build_model(config, torch.device("cpu"))
    linears = [m for m in model.projector if isinstance(m, torch.nn.Linear)]
    hidden, out = lookup(EXPECTED, method, "cifar10")[4]
    assert linears[0].in_features == 512 and linears[0].out_features == hidden and linears[-1].out_features == out
    assert len(linears) == (3 if method in ("barlow_twins", "vicreg", "intl") else 2)
    optimizer = build_optimizer(model.param_groups(), config["optim"])
    assert type(optimizer).__name__ == {"lars": "LARS", "sgd": "SGD", "adam": "Adam"}[config["optim"]["name"]]


@pytest.mark.parametrize("method", ["swav", "vicreg"])
def test_table12_weak_augmentation_is_one_override_away(method):
    """ReSA Table 12 (Appendix C.4): the weak + standard pair of ReSA applied to another method."""
    config = resolve(PRESETS / f"{method}_cifar10_resnet18.yaml", ["augment.views=weak_standard"])
    weak, standard = view_list(config)
    assert (weak.color_jitter_prob, weak.grayscale_prob, weak.blur_prob, weak.solarization_prob) == (0, 0, 0, 0)
    assert standard.color_jitter_prob == 0.8 and config["method"] == method
