"""Pretraining follows the ReSA authors' code where the paper is silent (issue 15 item 15).

Sources: winci-ai/resa (ImageNet) ``src/model.py`` line 40 (``zero_init_residual=True``) and its
initial commit 8d75bba ``src/model.py`` (ViT heads: leading LayerNorm in the predictor, Xavier
init); winci-ai/resa_cifar ``src/model.py`` lines 28-29 (zero init off for ResNet-18) and
``args.py`` line 36 (standard-view solarization p 0.2); ``method/base.py`` (fp32 assignment).
"""

from pathlib import Path

import pytest
import torch
from conftest import repo_path
from torch import nn

from pretrain.config import resolve
from pretrain.data.views import view_list
from pretrain.engine import build_model
from pretrain.heads import build_predictor, build_projector

PRESETS = Path(repo_path("configs/pretrain"))
TINY = ["model.projector_hidden_dim=32", "model.projector_out_dim=16"]


def last_bn_scales(encoder: nn.Module) -> list[torch.Tensor]:
    return [block.bn3.weight if hasattr(block, "bn3") else block.bn2.weight
            for layer in (encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4) for block in layer]


@pytest.mark.parametrize("preset, zeroed", [
    ("imagenet_resnet50_bs256.yaml", True),  # resa src/model.py:40
    ("imagenet100_resnet18.yaml", True),  # resa src/model.py:40 (every arch)
    ("cifar10_resnet18.yaml", False),  # resa_cifar src/model.py:28-29 (off for resnet18)
])
def test_residual_branches_start_at_zero_as_the_authors_choose_per_arch(preset, zeroed):
    model = build_model(resolve(PRESETS / preset, TINY), torch.device("cpu"))
    for encoder in (model.encoder, model.momentum_encoder):
        scales = last_bn_scales(encoder)
        assert all(bool((s == 0).all()) == zeroed for s in scales)
        assert bool((encoder.bn1.weight == 1).all())  # only the residual branches' last BN


@pytest.mark.parametrize("preset", ["cifar10_resnet18.yaml", "cifar100_resnet18.yaml", "cifar100lt_resnet18.yaml"])
def test_cifar_presets_solarize_only_the_standard_view(preset):
    weak, standard = view_list(resolve(PRESETS / preset))
    assert (weak.solarization_prob, standard.solarization_prob) == (0.0, 0.2)  # resa_cifar args.py:36


def test_vit_heads_are_xavier_initialised_and_the_predictor_starts_with_layernorm():
    config = resolve(PRESETS / "imagenet_vit_small.yaml")
    torch.manual_seed(0)
    projector, predictor = build_projector(384, config), build_predictor(config)
    assert isinstance(predictor[0], nn.LayerNorm) and predictor[0].eps == 1e-6
    assert predictor[0].normalized_shape == (512,)
    for linear in [m for m in [*projector, *predictor] if isinstance(m, nn.Linear)]:
        bound = (6.0 / (linear.in_features + linear.out_features)) ** 0.5  # xavier_uniform_
        assert 0.95 * bound < linear.weight.abs().max() <= bound
        assert torch.equal(linear.bias, torch.zeros_like(linear.bias))
    conv = resolve(PRESETS / "imagenet_resnet50_bs256.yaml")  # ConvNet heads unchanged: Linear first
    assert isinstance(build_predictor(conv)[0], nn.Linear)


@pytest.mark.parametrize("variant, loss_name", [("paper", "resa_loss"), ("official", "row_cross_entropy")])
def test_the_assignment_reaches_the_loss_in_fp32_under_bf16_autocast(monkeypatch, variant, loss_name):
    import pretrain.methods.resa as resa

    seen = []
    original = getattr(resa, loss_name)

    def spy(*args):
        seen.append(args[-2] if loss_name == "resa_loss" else args[-1])
        return original(*args)

    monkeypatch.setattr(resa, loss_name, spy)
    model = build_model(resolve(repo_path("configs/pretrain/demo_fmnist_resa.yaml"), [*TINY, f"variant={variant}"]),
                        torch.device("cpu"))
    views = torch.rand(2, 16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model(*views)
    assert seen and all(assign.dtype == torch.float32 for assign in seen)
    for assign in seen:
        torch.testing.assert_close(assign.sum(dim=1), torch.ones(16), rtol=0, atol=2e-6)
    assert torch.isfinite(loss)
