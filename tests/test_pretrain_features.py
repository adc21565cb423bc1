"""Datasets, ablation switches, AMP / channels_last on CPU, and the online monitoring metrics."""

import json
import pickle

import numpy as np
import pytest
import torch
from conftest import repo_path

from pretrain.config import resolve
from pretrain.data.cifar_lt import images_per_class, long_tail_indices
from pretrain.engine import Trainer, train
from pretrain.methods import build_method
from pretrain.models import build_backbone
from pretrain.monitor import clustering_metrics, weighted_knn

DEMO = repo_path("configs/pretrain/demo_fmnist_resa.yaml")
TINY = ["data.train_size=32", "optim.batch_size=8", "epochs=1", "optim.warmup_epochs=1",
        "model.projector_hidden_dim=32", "model.projector_out_dim=16", "run.log_every_steps=1", "run.num_threads=1"]


def test_cifar100_lt_is_the_15907_image_ldam_split_and_deterministic():
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(100), 500))  # CIFAR-100 train: 500 per class
    keep = long_tail_indices(labels)
    assert len(keep) == 15907 == sum(images_per_class())
    counts = np.bincount(labels[keep], minlength=100)
    assert counts[0] == 500 and counts[99] == 25 and (np.diff(counts) <= 0).all()
    assert np.array_equal(keep, long_tail_indices(labels))


def _write_cifar10(root, per_split=24):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        count = per_split if name in ("data_batch_1", "test_batch") else 0
        batch = {"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), "labels": [i % 10 for i in range(count)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))


def test_cifar10_in_its_torchvision_layout_trains_through_the_loader_path_with_monitoring(tmp_path):
    _write_cifar10(tmp_path / "cifar")
    config = resolve(repo_path("configs/pretrain/cifar10_resnet18.yaml"), [
        *TINY, "arch=resnet18", "data.train_size=0", "data.num_workers=0", f"data.root={tmp_path / 'cifar'}",
        f"output_dir={tmp_path / 'run'}", "monitor.every_epochs=1", "monitor.train_size=20", "monitor.eval_size=20"])
    train(config)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    epoch = records[-1]
    assert 0 <= epoch["knn_top1"] <= 100
    for name in ("encoding", "proj_hidden1", "proj_hidden2", "embedding"):
        assert -1 <= epoch[f"{name}/sc_mean"] <= 1 and epoch[f"{name}/sc_std"] >= 0 and -1 <= epoch[f"{name}/ari"] <= 1


def test_missing_cifar_root_names_the_expected_layout(tmp_path):
    from resa_core.errors import UserError

    config = resolve(repo_path("configs/pretrain/cifar10_resnet18.yaml"),
                     [f"data.root={tmp_path}", f"output_dir={tmp_path}"])
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        Trainer(config)


def test_clustering_metrics_and_knn_on_separated_blobs():
    rng = np.random.default_rng(0)
    centers = np.eye(4, 16) * 10
    labels = np.repeat(np.arange(4), 30)
    features = centers[labels] + rng.normal(size=(120, 16))
    metrics = clustering_metrics(features, labels, seed=0)
    assert metrics["ari"] == pytest.approx(1.0) and metrics["sc_mean"] > 0.5 and metrics["sc_std"] < 0.2
    shuffled = clustering_metrics(features, rng.permutation(labels), seed=0)
    assert shuffled["sc_mean"] < 0.05 and abs(shuffled["ari"]) < 0.1
    x, y = torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels)
    assert weighted_knn(x[::2], y[::2], x[1::2], y[1::2], k=5, temperature=0.07, num_classes=4) == 100.0


@pytest.mark.parametrize("overrides, has_momentum, has_predictor, source_dim", [
    ([], True, False, 512),
    (["model.momentum_encoder=false"], False, False, 512),
    (["model.predictor=true"], True, True, 512),
    (["loss.assignment_source=embedding"], True, False, 16),
])
def test_table11_and_figure10_switches(overrides, has_momentum, has_predictor, source_dim):
    config = resolve(DEMO, [*TINY, *overrides])
    method = build_method("resa", config, build_backbone("resnet18"))
    assert hasattr(method, "momentum_encoder") == has_momentum and (method.predictor is not None) == has_predictor
    seen = []
    original = method.assignment
    method.assignment = lambda source, target: seen.append(source.shape[1]) or original(source, target)
    loss, _ = method(torch.rand(6, 3, 32, 32), torch.rand(6, 3, 32, 32))
    assert torch.isfinite(loss) and seen == [source_dim]


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_and_channels_last_steps_run_on_cpu_with_fp32_master_weights(tmp_path, amp):
    trainer = Trainer(resolve(DEMO, [*TINY, f"run.amp={amp}", "run.channels_last=true", f"output_dir={tmp_path}"]))
    assert trainer.scaler.is_enabled() == (amp == "fp16")
    assert trainer.method.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    if amp == "fp16":
        # From GradScaler's default 2**16 the first 4 steps of this tiny model all overflow in fp16 (measured:
        # conv1's gradient) while the scale halves to 2**12; start at 2**13 as a run resumed after that search
        # would, so that 4 steps (~9 CPU s each) show a skipped step, its back-off, and updates.
        trainer.scaler.load_state_dict({**trainer.scaler.state_dict(), "scale": 2.0**13})
    weight = trainer.method.encoder.conv1.weight
    updates = []
    for views in trainer.source.epoch(0, 0):
        before, scale = weight.detach().clone(), trainer.scaler.get_scale()
        loss, _, _ = trainer._train_step(views)
        assert np.isfinite(loss)
        updates.append(not torch.equal(before, weight))
        if amp == "fp16":  # a skipped step (overflowing fp16 gradients) halves the scale, an update keeps it
            assert trainer.scaler.get_scale() == (scale if updates[-1] else scale / 2)
    assert weight.dtype == torch.float32 and torch.isfinite(weight).all()
    assert all(updates) if amp == "bf16" else any(updates), f"{amp}: steps that updated the weights: {updates}"
    trainer.save()
    state = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    assert bool(state["train_state"]["scaler"]) == (amp == "fp16") and state["global_step"] == 4


def test_resuming_another_variant_is_an_error(tmp_path):
    from resa_core.errors import UserError

    train(resolve(DEMO, [*TINY, "run.max_steps=0", f"output_dir={tmp_path}"]))
    with pytest.raises(UserError, match="checkpoint variant is 'paper'"):
        Trainer(resolve(DEMO, [*TINY, "variant=official", f"output_dir={tmp_path}"]))


def test_compile_flag_compiles_the_encoders_in_place_and_they_compute_what_eager_does(monkeypatch):
    """The compiled encoders run (TorchDynamo captures their graphs) and give the eager loss and gradients.

    The engine's ``Module.compile()`` is redirected to a graph-recording backend that runs the
    captured FX graph as is: Inductor's C++ code generation takes minutes on 2 CPU cores, the
    capture (what ``run.compile`` changes in the engine) is what is checked here.
    """
    from pretrain.engine import build_model

    captured = []

    def recording_backend(graph_module, example_inputs):
        captured.append(graph_module)
        return graph_module.forward

    compile_module = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile",
                        lambda self, *args, **kwargs: compile_module(self, *args, backend=recording_backend, **kwargs))
    try:
        plain = build_model(resolve(DEMO, TINY), torch.device("cpu"))
        compiled = build_model(resolve(DEMO, [*TINY, "run.compile=true"]), torch.device("cpu"))
        assert list(compiled.state_dict()) == list(plain.state_dict())
        views = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        losses = [model(views, views.flip(-1))[0] for model in (plain, compiled)]
        assert len(captured) == 2  # the encoder's and the momentum encoder's forward, one graph each
        for loss in losses:
            loss.backward()
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-6, atol=1e-6)
        for (name, reference), (_, param) in zip(plain.encoder.named_parameters(),
                                                 compiled.encoder.named_parameters(), strict=True):
            torch.testing.assert_close(param.grad, reference.grad, rtol=1e-5, atol=1e-6, msg=name)
    finally:
        torch._dynamo.reset()


def test_official_variant_with_multicrop_is_the_released_loss():
    """Only the 2 global views go through the momentum branch; loss = mean over (q, v != q) of row CEs."""
    import torch.nn.functional as F

    from pretrain.losses import cosine_similarity_matrix, sinkhorn

    config = resolve(DEMO, [*TINY, "variant=official", "augment.num_small_crops=2"])
    method = build_method("resa", config, build_backbone("resnet18"))
    captured = {"online": [], "momentum": [], "proj": [], "mproj": []}
    method.encoder.register_forward_hook(lambda m, i, o: captured["online"].append(o.detach()))
    method.momentum_encoder.register_forward_hook(lambda m, i, o: captured["momentum"].append(o))
    method.projector.register_forward_hook(lambda m, i, o: captured["proj"].append(o.detach()))
    method.momentum_projector.register_forward_hook(lambda m, i, o: captured["mproj"].append(o))
    views = [torch.rand(6, 3, 32, 32), torch.rand(6, 3, 32, 32), torch.rand(6, 3, 16, 16), torch.rand(6, 3, 16, 16)]
    loss, _ = method(*views)
    assert len(captured["online"]) == 4 and len(captured["momentum"]) == 2
    assign = sinkhorn(cosine_similarity_matrix(captured["online"][0], captured["momentum"][0]))
    emb = [F.normalize(z, dim=1) for z in captured["proj"]]
    emb_m = [F.normalize(z, dim=1) for z in captured["mproj"]]
    terms = [-(assign * F.log_softmax(emb[q] @ emb_m[v].T / 0.4, dim=1)).sum(dim=1).mean()
             for q in range(4) for v in range(2) if v != q]
    assert len(terms) == 6
    torch.testing.assert_close(loss.detach(), torch.stack(terms).mean())
