"""Every Table 8 preset loads and resolves to the paper's hyper-parameters (ReSA Appendix B.2)."""

from pathlib import Path

import pytest
import torch
from conftest import repo_path
from torch import nn

from pretrain.config import resolve
from pretrain.heads import build_predictor, build_projector
from pretrain.models import arch_spec, build_backbone
from pretrain.optim import schedule
from pretrain.schedules import peak_lr
from pretrain.vit_init import mocov3_init, sincos_position_embedding

PRESETS = Path(repo_path("configs/pretrain"))
# Table 8 (ReSA paper, Appendix B.2): dataset, arch, predictor, optimizer, batch, base lr, wd, warm-up epochs;
# epochs from Table 1 (CIFAR 1000, ImageNet-100 400), Table 2/3 and B.2 (800 epochs: base lr 0.4).
TABLE8 = {
    "cifar10_resnet18": ("cifar10", "resnet18_cifar", False, "sgd", 256, 0.3, 1e-4, 2, 1000),
    "cifar100_resnet18": ("cifar100", "resnet18_cifar", False, "sgd", 256, 0.3, 1e-4, 2, 1000),
    "cifar100lt_resnet18": ("cifar100_lt", "resnet18_cifar", False, "sgd", 256, 0.3, 1e-4, 2, 1000),
    "imagenet100_resnet18": ("imagenet100", "resnet18", False, "sgd", 128, 0.5, 2.5e-5, 2, 400),
    "imagenet_resnet50_bs256": ("imagenet", "resnet50", True, "sgd", 256, 0.5, 1e-5, 2, 100),
    "imagenet_resnet50_bs1024": ("imagenet", "resnet50", True, "sgd", 1024, 0.5, 1e-5, 10, 200),
    "imagenet_resnet50_bs1024_ep800": ("imagenet", "resnet50", True, "sgd", 1024, 0.4, 1e-5, 10, 800),
    "imagenet_vit_small": ("imagenet", "vit_small_patch16", True, "adamw", 1024, 5e-4, 0.1, 40, 300),
    "imagenet_vit_small_multicrop": ("imagenet", "vit_small_patch16", True, "adamw", 1024, 5e-4, 0.1, 40, 300),
}


def test_every_preset_file_is_covered():
    files = {p.stem for p in PRESETS.glob("*.yaml") if not p.stem.startswith(("_", "demo_"))}
    assert files == set(TABLE8)


@pytest.mark.parametrize("name", sorted(TABLE8))
def test_preset_resolves_to_table8(name):
    config = resolve(PRESETS / f"{name}.yaml")
    data, arch, predictor, optimizer, batch, base_lr, wd, warmup, epochs = TABLE8[name]
    optim = config["optim"]
    assert (config["data"]["name"], config["arch"], config["model"]["predictor"]) == (data, arch, predictor)
    assert (optim["name"], optim["batch_size"], optim["warmup_epochs"], config["epochs"]) == (
        optimizer, batch, warmup, epochs)
    assert optim["base_lr"] == pytest.approx(base_lr) and optim["weight_decay"] == pytest.approx(wd)
    # B.2 universal settings, identical in every preset.
    assert (config["model"]["projector_layers"], config["model"]["projector_hidden_dim"],
            config["model"]["projector_out_dim"]) == (3, 2048, 512)
    assert (config["loss"]["temperature"], config["loss"]["sinkhorn_eps"], config["loss"]["sinkhorn_iters"]) == (
        0.4, 0.05, 3)
    assert (config["model"]["momentum_base"], config["model"]["momentum_final"]) == (0.996, 1.0)
    assert config["model"]["momentum_encoder"] and config["loss"]["assignment_source"] == "encoding"
    # lr = base_lr x batch / 256, warm-up, then cosine to 0.1 x lr (ConvNets) or 1e-4 (ViT).
    steps = 10
    lr_at = schedule(optim, steps, epochs)
    peak = base_lr * batch / 256
    assert lr_at(warmup * steps) == pytest.approx(peak)
    assert lr_at(0) == pytest.approx(peak / (warmup * steps))
    floor = 1e-4 if arch.startswith("vit") else 0.1 * peak
    assert lr_at(epochs * steps) == pytest.approx(floor)


def test_cifar_presets_use_the_cifar_stem_and_imagenet_ones_the_standard_stem():
    assert not arch_spec("resnet18_cifar").standard_stem and arch_spec("resnet50").standard_stem
    model = build_backbone("resnet18_cifar")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and isinstance(model.maxpool, nn.Identity)


def test_convnet_heads_have_bn_relu_and_vit_heads_are_bn_free_with_gelu():
    conv = resolve(PRESETS / "imagenet_resnet50_bs256.yaml")
    vit = resolve(PRESETS / "imagenet_vit_small.yaml")
    for config, in_dim in ((conv, 2048), (vit, 384)):
        projector, predictor = build_projector(in_dim, config), build_predictor(config)
        linears = [m for m in projector if isinstance(m, nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == [(in_dim, 2048), (2048, 2048), (2048, 512)]
        assert [(m.in_features, m.out_features) for m in predictor if isinstance(m, nn.Linear)] == [
            (512, 2048), (2048, 512)]
        kinds = {type(m) for m in [*projector, *predictor]}
        if config is conv:
            assert nn.BatchNorm1d in kinds and nn.ReLU in kinds and nn.GELU not in kinds
        else:
            assert nn.BatchNorm1d not in kinds and nn.ReLU not in kinds and nn.GELU in kinds


def test_vit_gets_mocov3_init_with_fixed_sincos_positions_and_frozen_patch_embedding():
    vit = mocov3_init(build_backbone("vit_small_patch16"))
    assert not vit.pos_embed.requires_grad and not vit.patch_embed.proj.weight.requires_grad
    torch.testing.assert_close(vit.pos_embed, sincos_position_embedding(14, 384))
    assert torch.equal(vit.pos_embed[0, 0], torch.zeros(384))
    qkv = vit.blocks[0].attn.qkv.weight
    bound = (6.0 / (qkv.shape[0] // 3 + qkv.shape[1])) ** 0.5
    assert qkv.abs().max() <= bound and qkv.abs().max() > 0.9 * bound
    assert vit.cls_token.abs().max() < 1e-4 and vit(torch.zeros(1, 3, 96, 96)).shape == (1, 384)


def test_multicrop_needs_the_official_variant():
    from resa_core.errors import UserError

    with pytest.raises(UserError, match="augment.num_small_crops = 6 needs variant: official"):
        resolve(PRESETS / "imagenet_vit_small_multicrop.yaml", ["variant=paper"])
    assert peak_lr(0.3, 256) == pytest.approx(0.3)
