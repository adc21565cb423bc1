"""The baselines through the engine: training, checkpoint -> converter, and DDP equivalence of batch coupling.

* every method (DeepCluster-v2 with the engine's memory-bank pass) trains a few steps on real
  Fashion-MNIST (torchvision ResNet-18 at 16 px, batch 16), its loss falls, and
  ``python -m converters CKPT -o X.pkl --to detectron2 --verify`` accepts its checkpoint (run in-process
  through the same ``run_cli``);
* the batch-coupled methods (SimCLR's negatives, MoCo v3's in-batch negatives, MoCo v2+'s
  queue of gathered keys, DINO's centre) give on 2 gloo ranks, in float64, the loss, gradient,
  queue and centre of 1 process on the same global batch.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from converters.cli import main as converters_main
from pretrain.config import resolve
from pretrain.engine import build_model, train
from resa_core.errors import run_cli

ROOT = str(Path(__file__).resolve().parents[1])
DEMO = os.path.join(ROOT, "configs/pretrain/demo_fmnist_resa.yaml")
HEADS = ["model.projector_hidden_dim=32", "model.projector_out_dim=16", "model.predictor_hidden_dim=16"]
EXTRA = {"mocov2plus": ["loss.queue_size=16"], "dino": ["loss.num_prototypes=32"],
         "deepclusterv2": ["loss.num_prototypes=[8,8]"]}  # k-means: at most the 32 samples of an epoch
METHODS = ["simclr", "mocov2plus", "mocov3", "byol", "simsiam", "dino", "deepclusterv2"]


def config(method: str, *overrides: str) -> dict:
    return resolve(DEMO, [f"method={method}", *HEADS, *EXTRA.get(method, []), *overrides])


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_method_trains_with_falling_loss_and_its_checkpoint_converts(method, tmp_path):
    ckpt = train(config(method, "data.train_size=32", "optim.batch_size=16", "epochs=4", "optim.warmup_epochs=1",
                        "data.image_size=16", "run.tensorboard=false", "run.num_threads=1",
                        f"output_dir={tmp_path / 'run'}"))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epoch_losses = [r["epoch_loss"] for r in records if "epoch_loss" in r]
    assert len(epoch_losses) == 4
    # MoCo v2+: the first step's negatives are the random initial queue (an easy task); compare from epoch 2 on.
    start = 1 if method == "mocov2plus" else 0
    assert epoch_losses[-1] < epoch_losses[start], epoch_losses
    state = torch.load(ckpt, weights_only=True)
    assert state["method"] == method and state["global_step"] == 8
    has_teacher = method in ("mocov2plus", "mocov3", "byol", "dino")
    assert ("momentum_encoder" in state) == has_teacher
    if has_teacher:  # the teacher moved (EMA) but is not a copy of the student
        name = "layer1.0.conv1.weight"
        initial = build_model(state["config"], torch.device("cpu")).encoder.state_dict()[name]
        teacher = state["momentum_encoder"][name]
        assert not torch.equal(teacher, initial) and not torch.equal(teacher, state["encoder"][name])
    out = tmp_path / "backbone.pkl"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(converters_main, [str(ckpt), "-o", str(out), "--to", "detectron2", "--verify"])
    assert exit_info.value.code == 0 and out.stat().st_size > 1_000_000


# --- DDP equivalence ---------------------------------------------------------------------------------

GLOBAL, SIZE = 8, 16
COUPLED = ["simclr", "mocov3", "mocov2plus", "dino"]
OPTS = ["data.image_size=16", f"optim.batch_size={GLOBAL}"]

WORKER = f"""
import json, sys, torch
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from pretrain import distributed
from pretrain.engine import build_model
from test_pretrain_baseline_methods import COUPLED, OPTS, config, run_two_steps
torch.set_num_threads(1)
info, device = distributed.init("gloo")
local = slice(info.rank * {GLOBAL // 2}, (info.rank + 1) * {GLOBAL // 2})
out = {{}}
for method in COUPLED:
    model = build_model(config(method, *OPTS), device).double()
    out[method] = run_two_steps(model, local, info.world_size)
    out[method]["bn"] = type(model.encoder.bn1).__name__
json.dump(out, open(sys.argv[1] + f"/rank{{info.rank}}.json", "w"))
distributed.shutdown()
"""


def run_two_steps(model, local: slice, world: int) -> dict:
    """Step 1: loss and gradient (averaged over ranks, as DDP); commit (EMA, queue, centre); step 2: loss."""
    g = torch.Generator().manual_seed(3)
    views = [torch.rand(GLOBAL, 3, SIZE, SIZE, generator=g, dtype=torch.float64)[local] for _ in range(2)]
    loss, _ = model(*views)
    loss.backward()
    grads = torch.cat([model.encoder.conv1.weight.grad.flatten(), next(model.projector.parameters()).grad.flatten()])
    if world > 1:
        torch.distributed.all_reduce(grads)
    model.after_step(0.5)
    with torch.no_grad():
        second, _ = model(*views)
    state = {name: tensor.tolist() for name, tensor in model.state_dict().items() if name in ("queue", "center")}
    return {"loss": loss.item(), "grad": (grads / world).tolist(), "second": second.item(), **state}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp_baselines")
    script = folder / "worker.py"
    script.write_text(WORKER)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             f"--master_port={port}", str(script), str(folder)], capture_output=True, text=True,
                            timeout=900, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
@pytest.mark.parametrize("method", COUPLED)
def test_two_ranks_equal_one_process_on_the_global_batch_in_float64(method, ranks):
    model = build_model(config(method, *OPTS), torch.device("cpu")).double()
    single = run_two_steps(model, slice(0, GLOBAL), 1)
    assert all(rank[method]["bn"] == "NaiveSyncBatchNorm" for rank in ranks)
    mean = lambda key: sum(rank[method][key] for rank in ranks) / len(ranks)  # noqa: E731  (DDP's average)
    assert mean("loss") == pytest.approx(single["loss"], rel=1e-9)
    assert mean("second") == pytest.approx(single["second"], rel=1e-9)
    for rank in ranks:
        torch.testing.assert_close(torch.tensor(rank[method]["grad"]), torch.tensor(single["grad"]),
                                   rtol=1e-9, atol=1e-12)
        for key in ("queue", "center"):
            if key in single:
                torch.testing.assert_close(torch.tensor(rank[method][key]), torch.tensor(single[key]),
                                           rtol=1e-9, atol=1e-12)


def test_mocov3_vit_heads_follow_the_authors_mocovit():
    """moco-v3 builder.py: MoCo_ViT has a 3-layer projector and a predictor ending in BN; MoCo_ResNet 2 and none."""
    vit = build_model(config("mocov3", "arch=vit_small_patch16"), torch.device("cpu"))
    resnet = build_model(config("mocov3"), torch.device("cpu"))
    linears = lambda head: [m for m in head if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert len(linears(vit.projector)) == 3 and len(linears(resnet.projector)) == 2
    assert isinstance(vit.predictor[-1], torch.nn.BatchNorm1d) and isinstance(resnet.predictor[-1], torch.nn.Linear)
    assert all(m.bias is None for m in linears(vit.projector) + linears(vit.predictor))
    loss, _ = vit(torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32))
    loss.backward()
    assert vit.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert not vit.encoder.patch_embed.proj.weight.requires_grad  # MoCo v3's frozen random patch projection


@pytest.mark.slow
def test_mocov2plus_resumes_mid_epoch_with_identical_weights_and_queue(tmp_path):
    """The queue and the EMA are committed with the step, so a resumed run replays the uninterrupted one."""
    args = ["data.train_size=32", "optim.batch_size=8", "epochs=1", "data.image_size=16", "run.tensorboard=false",
            "run.num_threads=1"]
    straight = torch.load(train(config("mocov2plus", *args, f"output_dir={tmp_path / 'a'}")), weights_only=True)
    from pretrain.engine import Unfinished

    with pytest.raises(Unfinished):
        train(config("mocov2plus", *args, "run.max_steps=3", f"output_dir={tmp_path / 'b'}"))
    resumed = torch.load(train(config("mocov2plus", *args, f"output_dir={tmp_path / 'b'}")), weights_only=True)
    model_a, model_b = straight["train_state"]["model"], resumed["train_state"]["model"]
    assert int(model_a["queue_ptr"]) == 0 and not torch.equal(model_a["queue"][0, :, :8], model_a["queue"][0, :, 8:])
    for name, tensor in model_a.items():
        assert torch.equal(tensor, model_b[name]), name


def test_dino_drops_the_prototype_gradient_in_the_first_epoch_and_warms_the_teacher_temperature():
    """solo-learn dino.py on_after_backward (freeze_last_layer 1) and main_dino.py's teacher-temperature warm-up."""
    model = build_model(config("dino", "loss.warmup_teacher_temperature_epochs=3", "epochs=10"), torch.device("cpu"))
    prototypes = model.projector[-1].weight_v
    for epoch, frozen, temperature in ((0, True, 0.04), (1, False, 0.055), (5, False, 0.07)):
        model.zero_grad()
        model.epoch = epoch
        loss, logs = model(torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32))
        loss.backward()
        assert prototypes.grad is not None and prototypes.grad.abs().sum() > 0
        model.before_optimizer_step()
        assert (prototypes.grad is None) == frozen
        assert logs["teacher_temperature"] == pytest.approx(temperature)
    assert not model.projector[-1].weight_g.requires_grad  # norm_last_layer
