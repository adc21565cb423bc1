"""ImageNet ResNet-50 presets of the methods ReSA Tables 2 and 3 compare with hold their papers' recipes.

Expected values transcribed from: SimCLR Section 2.3 + google-research/simclr README; moco-v3
CONFIG.md + main_moco.py; BYOL Appendix C; swav scripts/swav_400ep_2x224_pretrain.sh; barlowtwins
main.py; vicreg main_vicreg.py; dino README (ResNet-50 command) + main_dino.py.
"""

from pathlib import Path

import pytest
from conftest import repo_path

from pretrain.config import resolve
from pretrain.data.views import view_list
from pretrain.optim import schedule

PRESETS = Path(repo_path("configs/pretrain/baselines_r50"))
# method: (optimizer, batch, base lr (x batch/256), wd, epochs, warm-up, (hidden, out), crop min, views, loss values)
RECIPES = {
    "simclr": ("lars", 4096, 0.3, 1e-6, 100, 10, (2048, 128), 0.08, 2, {"temperature": 0.1}),
    "mocov3": ("lars", 4096, 0.6, 1e-6, 100, 10, (4096, 256), 0.2, 2, {"temperature": 1.0}),
    "byol": ("lars", 4096, 0.2, 1.5e-6, 1000, 10, (4096, 256), 0.08, 2, {}),
    "swav": ("lars", 4096, 4.8 * 256 / 4096, 1e-6, 400, 10, (2048, 128), 0.08, 2,
             {"temperature": 0.1, "num_prototypes": 3000, "queue_size": 0, "freeze_prototypes_epochs": 1}),
    "barlow_twins": ("lars", 2048, 0.2, 1e-6, 1000, 10, (8192, 8192), 0.08, 2, {"lambd": 0.0051, "scale": 1.0}),
    "vicreg": ("lars", 2048, 0.2, 1e-6, 1000, 10, (8192, 8192), 0.08, 2,
               {"sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0}),
    "dino": ("sgd", 512, 0.03, 1e-4, 100, 10, (2048, 256), 0.14, 10,
             {"num_prototypes": 65536, "teacher_temperature": 0.04, "clip_grad": 3.0}),
}


def test_every_r50_preset_file_is_covered():
    assert {p.stem for p in PRESETS.glob("*.yaml") if not p.stem.startswith("_")} == {
        f"{method}_imagenet_resnet50" for method in RECIPES}


@pytest.mark.parametrize("method", sorted(RECIPES))
def test_r50_preset_holds_the_papers_recipe(method):
    config = resolve(PRESETS / f"{method}_imagenet_resnet50.yaml")
    name, batch, base_lr, wd, epochs, warmup, heads, crop_min, n_views, loss = RECIPES[method]
    optim = config["optim"]
    assert (config["method"], config["arch"], config["data"]["name"], config["data"]["image_size"]) == (
        method, "resnet50", "imagenet", 224)
    assert (optim["name"], optim["batch_size"]) == (name, batch)
    assert (config["epochs"], optim["warmup_epochs"]) == (epochs, warmup)
    assert optim["base_lr"] == pytest.approx(base_lr) and optim["weight_decay"] == pytest.approx(wd)
    assert (config["model"]["projector_hidden_dim"], config["model"]["projector_out_dim"]) == heads
    assert {key: config["loss"][key] for key in loss} == loss
    views = view_list(config)
    assert len(views) == n_views and views[0].min_scale == crop_min and views[0].crop_size == 224
    lr_at = schedule(optim, 10, epochs)
    assert lr_at(warmup * 10) == pytest.approx(base_lr * batch / 256)


def test_swav_r50_schedule_is_the_scripts():
    # --start_warmup 0.3 -> --base_lr 4.8 -> --final_lr 0.0048 (main_swav.py: no batch rescaling of base_lr)
    optim = resolve(PRESETS / "swav_imagenet_resnet50.yaml")["optim"]
    lr_at = schedule(optim, 10, 400)
    assert (lr_at(0), lr_at(100), lr_at(4000)) == pytest.approx((0.3, 4.8, 0.0048))


@pytest.mark.parametrize("method", ["swav", "vicreg", "mocov3"])
def test_table12_weak_augmentation_is_one_override_away(method):
    """ReSA Table 12 (Appendix C.4): ReSA's weak view for SwAV, VICReg and MoCo v3."""
    config = resolve(PRESETS / f"{method}_imagenet_resnet50.yaml", ["augment.views=weak_standard"])
    weak, standard = view_list(config)[:2]
    assert (weak.color_jitter_prob, weak.grayscale_prob, weak.blur_prob, weak.solarization_prob) == (0, 0, 0, 0)
    assert standard.color_jitter_prob == 0.8
