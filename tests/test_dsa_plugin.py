"""DSA plugged into registered methods through the engine (pretrain/methods/dsa_plugin.py).

``dsa.enabled=true`` adds exactly ``nu * L_AM^S + upsilon * L_con`` on the encoder's features to
the method's own loss; ``f_s`` is trained (one optimizer group, in the state_dict); SimCLR + DSA
and BYOL + DSA lower their loss on a fixed batch; an engine run writes a checkpoint the converters
accept, and a run stopped mid-epoch and resumed ends with the same weights, ``f_s`` included.
"""

import pytest
import torch
from conftest import repo_path

from converters.cli import main as converters_main
from pretrain.checkpoint import check_compatible, checkpoint_path
from pretrain.config import resolve
from pretrain.engine import Unfinished, build_model, train
from pretrain.losses.dsa import dsa_regulariser
from pretrain.methods import dsa_plugin
from resa_core.errors import UserError, run_cli

DEMO = repo_path("configs/pretrain/demo_fmnist_resa.yaml")
TINY = ["model.projector_hidden_dim=32", "model.projector_out_dim=16", "dsa.hidden_dim=16", "dsa.knn=4"]


def build(method, *extra):
    config = resolve(DEMO, [f"method={method}", "arch=resnet18_cifar", "optim.batch_size=8", *TINY, *extra])
    return build_model(config, torch.device("cpu"))


def fixed_views(batch=8, size=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch, 3, size, size, generator=g)
    return [base + 0.1 * torch.randn(batch, 3, size, size, generator=g) for _ in range(2)]


def test_the_regulariser_is_added_on_the_encoder_features(one_torch_thread):
    views = fixed_views()
    plain, with_dsa = build("simclr"), build("simclr", "dsa.enabled=true")
    plain.load_state_dict(with_dsa.state_dict(), strict=False)  # same encoder and projector
    plain.eval(), with_dsa.eval()  # BN statistics untouched by the extra forward below
    base, _ = plain(*views)
    total, logs = with_dsa(*views)
    z = torch.nn.functional.normalize(torch.cat([with_dsa.encoder(v) for v in views]), dim=1)
    aux = torch.nn.functional.normalize(torch.cat([with_dsa.dsa.aux(v) for v in views]), dim=1)
    cfg = with_dsa.dsa.cfg
    extra, parts = dsa_regulariser(z, with_dsa.dsa.similarity.pair_scores(z), aux, alpha=cfg["alpha"],
                                   nu=cfg["nu"], upsilon=cfg["upsilon"], knn=cfg["knn"],
                                   temperature=cfg["temperature"])
    assert total.item() == pytest.approx(base.item() + extra.item(), rel=1e-6)
    assert logs["dsa_am"] == pytest.approx(parts["dsa_am"].item()) and logs["dsa_con"] > 0
    assert (cfg["alpha"], cfg["nu"], cfg["upsilon"]) == (1.0, 0.1, 100.0)  # DSA Section VI-B


def test_f_s_is_trained_once_and_saved(one_torch_thread):
    for method in ("simclr", "simsiam"):  # SimSiam lists its own groups (Method.param_groups overridden)
        model = build(method, "dsa.enabled=true")
        groups = dsa_plugin.param_groups(model)
        listed = [id(p) for group in groups for p in group["params"]]
        own = [id(p) for p in model.dsa.similarity.parameters()]
        assert len(listed) == len(set(listed)) and set(own) <= set(listed)
        assert any(k.startswith("dsa.similarity.") for k in model.state_dict())


@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_loss_falls_on_a_fixed_batch(method, one_torch_thread):
    torch.manual_seed(0)
    model = build(method, "dsa.enabled=true")
    optimizer = torch.optim.SGD([g for g in dsa_plugin.param_groups(model)], lr=0.05, momentum=0.9)
    views, losses = fixed_views(), []
    for step in range(4):
        loss, logs = model(*views)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        assert model.dsa.similarity.first.weight.grad.abs().sum() > 0
        optimizer.step()
        model.after_step((step + 1) / 4)
        losses.append(loss.item())
    assert sum(losses[-2:]) / 2 < 0.9 * sum(losses[:2]) / 2, losses


def test_resuming_across_a_dsa_switch_is_an_error(tmp_path):
    state = {"arch": "resnet18", "method": "simclr", "config": {"variant": "paper", "dsa": {"enabled": False}}}
    config = resolve(DEMO, ["method=simclr", "arch=resnet18", "dsa.enabled=true", *TINY])
    with pytest.raises(UserError, match="checkpoint dsa.enabled is 'False'"):
        check_compatible(state, config, tmp_path / "checkpoint.pth")
    check_compatible({**state, "config": {"dsa": {"enabled": True}}}, config, tmp_path / "checkpoint.pth")


def test_a_torchvision_aux_encoder_is_loaded_frozen_and_stays_in_eval(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), tmp_path / "aux.pth")
    model = build("simclr", "dsa.enabled=true", f"dsa.aux_encoder={tmp_path / 'aux.pth'}")
    model.train()
    aux = model.dsa.aux
    assert not aux.training and not any(p.requires_grad for p in aux.parameters())
    torch.testing.assert_close(aux.conv1.weight, reference.conv1.weight)
    assert aux(torch.rand(2, 3, 32, 32)).shape == (2, 512)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(UserError, match="dsa.knn = 20"):
        resolve(DEMO, ["dsa.enabled=true", "optim.batch_size=8"])
    with pytest.raises(UserError, match="dsa.aux_encoder"):
        resolve(DEMO, ["dsa.enabled=true", "dsa.aux_encoder=/nonexistent.pth"])


@pytest.mark.slow
def test_engine_checkpoint_converts_and_resumes_exactly(tmp_path, one_torch_thread):
    def config(folder, *extra):
        return resolve(DEMO, ["method=simclr", "dsa.enabled=true", *TINY, "arch=resnet18", "data.train_size=24",
                              "optim.batch_size=8", "epochs=1", "optim.warmup_epochs=0", "run.log_every_steps=1",
                              "monitor.every_epochs=0", f"output_dir={tmp_path / folder}", *extra])

    reference = torch.load(train(config("straight")), map_location="cpu", weights_only=True)
    with pytest.raises(Unfinished):
        train(config("resumed", "run.max_steps=2"))  # 3 steps per epoch: stop mid-epoch
    resumed = torch.load(train(config("resumed")), map_location="cpu", weights_only=True)
    for name, tensor in reference["train_state"]["model"].items():
        assert torch.equal(tensor, resumed["train_state"]["model"][name]), f"{name} differs after resume"
    assert any(k.startswith("dsa.similarity.") for k in reference["train_state"]["model"])
    assert '"dsa_con"' in (tmp_path / "straight" / "metrics.jsonl").read_text()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(converters_main, [str(checkpoint_path(tmp_path / "straight")), "-o", str(tmp_path / "d2.pkl"),
                                  "--to", "detectron2", "--verify"])
    assert exit_info.value.code == 0
