"""SwAV, Barlow Twins, VICReg, W-MSE, CW-RGP and INTL through the engine at toy size.

Per method: the loss falls on a fixed batch, and a checkpoint written by the engine on real
Fashion-MNIST is accepted by ``python -m converters ... --to detectron2 --verify``. SwAV's
frozen prototypes and queue, and the whitening methods' step-seeded draws, are checked apart.
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
HEADS = ["model.projector_hidden_dim=64", "model.projector_out_dim=32"]
# Per method: the tiny sizes its loss needs (W-MSE: sub-batch > embedding dim; CW-RGP channel
# whitening: sub-batch < channels per group, so the sub-batch Gram is full rank).
TINY = {
    "swav": [*HEADS, "loss.num_prototypes=10"],
    "barlow_twins": HEADS,
    "vicreg": HEADS,
    "wmse": [*HEADS, "model.projector_out_dim=4", "loss.w_size=8"],
    "cwrgp": [*HEADS, "loss.w_size=8", "loss.group=2"],
    "intl": HEADS,
}
METHODS = sorted(TINY)


def build(method, *extra, arch="resnet18_cifar"):
    torch.manual_seed(0)
    return build_model(resolve(DEMO, [f"method={method}", f"arch={arch}", "optim.batch_size=16", *TINY[method],
                                      *extra]), torch.device("cpu"))


def fixed_views(batch=16, size=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch, 3, size, size, generator=g)
    return [(base + 0.1 * torch.randn(batch, 3, size, size, generator=g)) for _ in range(2)]


@pytest.mark.parametrize("method", METHODS)
def test_loss_falls_on_a_fixed_batch(method, one_torch_thread):
    model = build(method)
    model.epoch = 5  # past SwAV's prototype freeze
    losses = optimise(model, fixed_views(), 6)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-2:]) / 2 < 0.9 * sum(losses[:2]) / 2, losses


def test_swav_prototypes_frozen_in_the_first_epoch_and_unit_norm(one_torch_thread):
    model = build("swav", "loss.freeze_prototypes_epochs=1")
    before = model.prototypes.weight.detach().clone()
    optimise(model, fixed_views(), 2)  # epoch 0: frozen
    torch.testing.assert_close(model.prototypes.weight, before)
    model.epoch = 1
    optimise(model, fixed_views(), 2)
    assert not torch.allclose(model.prototypes.weight, before)
    torch.testing.assert_close(model.prototypes.weight.norm(dim=1), torch.ones(10))


def test_swav_queue_fills_from_its_epoch_then_joins_the_sinkhorn(one_torch_thread):
    model = build("swav", "loss.queue_size=32", "loss.epoch_queue_starts=1")
    views = fixed_views()
    optimise(model, views, 1)
    assert int(model.queue_rows) == 0 and not model.queue.any()  # epoch 0 < epoch_queue_starts
    model.epoch = 1
    used = []
    for _ in range(3):  # 16 rows per step: full after two steps, used from the third
        _, logs = model(*views)
        used.append(logs["queue_used"])
        model.after_step(0.5)
    assert used == [0.0, 0.0, 1.0] and int(model.queue_rows) == 48 and model.queue.shape == (2, 32, 32)
    with torch.no_grad():  # the newest rows are the last step's large-crop embeddings (no optimizer step since)
        newest = [torch.nn.functional.normalize(model.projector(model.encoder(v)), dim=1) for v in views]
    for crop in range(2):
        torch.testing.assert_close(model.queue[crop, :16], newest[crop])


@pytest.mark.parametrize("method", ["wmse", "cwrgp"])
def test_whitening_draws_follow_the_step_counter(method, one_torch_thread):
    model = build(method, "loss.w_iter=2")
    model.eval()  # fixed BN: the loss depends on the views and the draws only
    views = fixed_views()
    with torch.no_grad():
        first, again = model(*views)[0], model(*views)[0]
        model.after_step(0.1)
        second = model(*views)[0]
    assert first == again and first != second
    assert int(model.draw_step) == 1 and "draw_step" in model.state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_engine_checkpoint_converts_to_detectron2(method, tmp_path, one_torch_thread):
    config = resolve(DEMO, [f"method={method}", "arch=resnet18", "data.train_size=32", "optim.batch_size=16",
                            "epochs=1", "optim.warmup_epochs=0", "run.log_every_steps=1", "monitor.every_epochs=0",
                            f"output_dir={tmp_path}", *TINY[method]])
    ckpt = train(config)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert (state["method"], state["global_step"]) == (method, 2)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(converters_main, [str(ckpt), "-o", str(tmp_path / "d2.pkl"), "--to", "detectron2", "--verify"])
    assert exit_info.value.code == 0
    assert (tmp_path / "d2.pkl").stat().st_size > 0
