"""MIRA through the engine at toy size (pretrain/methods/mira.py).

The loss falls on a fixed batch; small crops join the student; the prototypes are frozen in the
first epoch and keep unit norm; the teacher uses the online prototypes; a checkpoint written by
the engine on real Fashion-MNIST exports ``momentum_encoder`` and is accepted by
``python -m converters ... --to detectron2 --verify``.
"""

import pytest
import torch
from conftest import repo_path
from toy_steps import optimise

from converters.cli import main as converters_main
from pretrain.config import resolve
from pretrain.engine import build_model, train
from resa_core.errors import run_cli

DEMO = repo_path("configs/pretrain/demo_fmnist_resa.yaml")
TINY = ["method=mira", "model.projector_hidden_dim=64", "model.projector_out_dim=32", "loss.num_prototypes=20"]


def build(*extra):
    torch.manual_seed(0)
    return build_model(resolve(DEMO, [*TINY, "arch=resnet18_cifar", "optim.batch_size=16", *extra]),
                       torch.device("cpu"))


def fixed_views(batch=16, size=16, seed=1, n=2):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch, 3, size, size, generator=g)
    return [(base + 0.1 * torch.randn(batch, 3, size, size, generator=g)) for _ in range(n)]


def test_loss_falls_on_a_fixed_batch(one_torch_thread):
    model = build()
    model.epoch = 1  # past the prototype freeze
    losses = optimise(model, fixed_views(), 6)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-2:]) / 2 < 0.9 * sum(losses[:2]) / 2, losses


def test_small_crops_train_the_student_only(one_torch_thread):
    model = build("augment.num_small_crops=2")
    model.epoch = 1
    large, small = fixed_views(), fixed_views(size=8, seed=2)
    loss, _ = model(*large, *small)
    loss_without, _ = model(*large)
    assert loss.item() != pytest.approx(loss_without.item())
    loss.backward()
    assert model.encoder.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.momentum_encoder.parameters())


def test_prototypes_frozen_in_the_first_epoch_unit_norm_and_shared_with_the_teacher(one_torch_thread):
    model = build("loss.freeze_prototypes_epochs=1")
    weight_v = model.prototypes[1].weight_v
    before = weight_v.detach().clone()
    optimise(model, fixed_views(), 2)  # epoch 0: frozen
    torch.testing.assert_close(weight_v, before)
    model.epoch = 1
    optimise(model, fixed_views(), 2)
    assert not torch.allclose(weight_v, before)
    assert not model.prototypes[1].weight_g.requires_grad
    cosines = model.prototypes(5 * torch.randn(64, 32))  # L2-normalised input, unit-norm prototypes
    assert cosines.abs().max().item() <= 1 + 1e-6
    assert not any(name.startswith("momentum_prototypes") for name, _ in model.named_parameters())


def test_beta_follows_the_original_cosine_schedule_when_asked(one_torch_thread):
    model = build("loss.beta_initial=0.75")
    assert model.beta() == pytest.approx(0.75)
    model.after_step(1.0)
    assert model.beta() == pytest.approx(2 / 3)
    assert build().beta() == pytest.approx(2 / 3)  # the paper's constant beta by default


@pytest.mark.slow
def test_engine_checkpoint_exports_the_teacher_and_converts_to_detectron2(tmp_path, one_torch_thread):
    config = resolve(DEMO, [*TINY, "arch=resnet18", "data.train_size=32", "optim.batch_size=16", "epochs=1",
                            "optim.warmup_epochs=0", "run.log_every_steps=1", "monitor.every_epochs=0",
                            f"output_dir={tmp_path}"])
    ckpt = train(config)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert (state["method"], state["global_step"]) == ("mira", 2)
    assert any("momentum_encoder" in key for key in state)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(converters_main, [str(ckpt), "-o", str(tmp_path / "d2.pkl"), "--to", "detectron2", "--verify"])
    assert exit_info.value.code == 0
    assert (tmp_path / "d2.pkl").stat().st_size > 0
