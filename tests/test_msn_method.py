"""MSN / PMSN as methods (pretrain/methods/msn.py): masking, priors, schedules, engine and converters.

Unit tests build the method around a tiny timm ViT (32 px, 8 px patches: 16 patch tokens, width
32, 2 blocks) so they take a second; the engine test trains the CPU preset's ViT-S/16 on real
Fashion-MNIST and converts its checkpoint into MMSegmentation's ViT with ``--verify``.
"""

import math
from pathlib import Path

import pytest
import torch
from conftest import require
from timm.models.vision_transformer import VisionTransformer

from converters import convert_file
from converters.engines import FEATURE_TOLERANCE
from pretrain import distributed
from pretrain.config import resolve
from pretrain.engine import train
from pretrain.methods import build_method
from pretrain.methods.msn import kept_patches, masked_vit_features
from resa_core.errors import UserError

TINY = str(Path(__file__).resolve().parents[1] / "configs/pretrain/pmsn/pmsn_tiny_fmnist.yaml")


def tiny_vit() -> VisionTransformer:
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=0,
                            dynamic_img_size=True)
    vit.feature_dim = 32
    return vit


def build(*overrides):
    torch.manual_seed(0)
    return build_method(resolve(TINY, list(overrides))["method"], resolve(TINY, list(overrides)), tiny_vit())


def fixed_views(batch=16, seed=1, small=2):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch, 3, 32, 32, generator=g)
    large = [base + 0.1 * torch.randn(batch, 3, 32, 32, generator=g) for _ in range(2)]
    return large + [torch.rand(batch, 3, 16, 16, generator=g) for _ in range(small)]


def test_loss_falls_on_a_fixed_batch(one_torch_thread):
    model = build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    views, losses = fixed_views(), []
    for step in range(8):
        loss, logs = model(*views)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.after_step((step + 1) / 8)
        losses.append(loss.item())
        assert set(logs) == {"msn_ce", "prior_kl"}
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-2:]) / 2 < 0.8 * sum(losses[:2]) / 2, losses


def test_unmasked_path_is_timms_forward_and_masking_keeps_floor_of_the_kept_share(one_torch_thread):
    vit, images = tiny_vit().eval(), torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(masked_vit_features(vit, images, None), vit(images))
    keep = kept_patches(torch.Generator().manual_seed(0), 4, 16, 0.15)
    assert keep.shape == (4, 13)  # deit.py: floor(16 * 0.85) patches kept
    assert all(len(set(row.tolist())) == 13 for row in keep)
    assert not torch.equal(keep[0], keep[1])  # per-sample masks
    all_kept = torch.arange(16).expand(4, 16)
    torch.testing.assert_close(masked_vit_features(vit, images, all_kept), vit(images))
    masked = masked_vit_features(vit, images, keep)
    assert (masked - vit(images)).abs().max() > 1e-4


def test_masks_of_two_ranks_are_the_slices_of_the_one_process_masks(monkeypatch):
    one = kept_patches(torch.Generator().manual_seed(3), 8, 16, 0.5)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    halves = []
    for rank in range(2):
        monkeypatch.setattr(distributed, "rank", lambda r=rank: r)
        halves.append(kept_patches(torch.Generator().manual_seed(3), 4, 16, 0.5))
    torch.testing.assert_close(torch.cat(halves), one)


def test_priors_msn_uniform_pmsn_power_law_and_exponent_zero_is_msn(one_torch_thread):
    msn, pmsn, flat = build("method=msn"), build(), build("loss.prior_tau=0.0")
    torch.testing.assert_close(msn.prior, torch.full((16,), 1 / 16, dtype=msn.prior.dtype))
    k = torch.arange(1, 17, dtype=torch.float64)
    torch.testing.assert_close(pmsn.prior.double(), k ** -0.25 / (k ** -0.25).sum())  # PMSN Sec. 5.2, tau 0.25
    views = fixed_views()
    torch.testing.assert_close(msn(*views)[0], flat(*views)[0])
    assert not torch.allclose(msn(*views)[0], pmsn(*views)[0])


def test_focal_views_and_masked_anchor_train_the_student_only(one_torch_thread):
    model = build()
    views = fixed_views()
    loss, _ = model(*views)
    assert loss.item() != pytest.approx(model(*views[:2])[0].item())
    loss.backward()
    assert model.prototypes.grad.abs().sum() > 0 and model.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.momentum_encoder.parameters())
    assert all(p.grad is None for p in model.momentum_projector.parameters())


def test_targets_come_from_the_ema_teacher(one_torch_thread):
    """Perturbing the teacher's head changes the loss; the online head alone does not decide the targets."""
    model = build("loss.use_sinkhorn=false")
    views = fixed_views()
    before = model(*views)[0].item()
    with torch.no_grad():
        model.momentum_projector[-1].weight.mul_(-1.0)
    assert model(*views)[0].item() != pytest.approx(before, rel=1e-3)


def test_momentum_is_linear_over_one_and_a_quarter_runs_and_prototypes_skip_weight_decay():
    model = build()
    model.after_step(0.5)
    assert model.momentum == pytest.approx(0.996 + 0.004 * 0.5 / 1.25)  # msn_train.py momentum_scheduler
    groups = model.param_groups()
    assert groups[1] == {"params": [model.prototypes], "weight_decay": 0.0}  # msn_train.py::init_opt
    assert all(p is not model.prototypes for p in groups[0]["params"])


def test_config_errors_are_one_line():
    with pytest.raises(UserError, match="needs a ViT arch"):
        resolve(TINY, ["arch=resnet18"])
    with pytest.raises(UserError, match="mask_ratio"):
        resolve(TINY, ["loss.mask_ratio=1.0"])
    with pytest.raises(UserError, match="prior_tau"):
        resolve(TINY, ["loss.prior_tau=-1"])


@pytest.mark.slow
def test_engine_checkpoint_exports_the_target_encoder_into_mmsegmentation_vit(tmp_path, one_torch_thread):
    require("mmseg", "scripts/install_segmentation.sh")
    config = resolve(TINY, ["data.train_size=16", f"output_dir={tmp_path}"])  # one step
    ckpt = train(config)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert (state["method"], state["global_step"]) == ("pmsn", 1)
    losses = [line for line in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(losses) == 1
    conversion = convert_file(ckpt, tmp_path / "mmseg.pth", "mmseg", verify=True)
    assert conversion.backbone.arch == "vit_small_patch16"
    (engine,) = conversion.verify.engines
    assert engine.model == "MMSegmentation VisionTransformer ViT-S/16"
    assert engine.skipped is None and (engine.missing, engine.unexpected) == (0, 0)
    assert engine.max_abs_diff <= FEATURE_TOLERANCE, engine.summary()
