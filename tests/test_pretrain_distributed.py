"""DDP on CPU: 2 gloo ranks launched by torchrun against 1 process on the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pretrain import distributed
from pretrain.config import resolve
from pretrain.engine import build_model
from pretrain.losses import cosine_similarity_matrix, sinkhorn, sinkhorn_distributed

DEMO = "configs/pretrain/demo_fmnist_resa.yaml"
TINY = ["model.projector_hidden_dim=32", "model.projector_out_dim=16"]
GLOBAL, SIZE = 8, 32
ROOT = str(Path(__file__).resolve().parents[1])

WORKER = f"""
import json, sys, torch
from pretrain import distributed
from pretrain.config import resolve
from pretrain.engine import build_model
torch.set_num_threads(1)
info, device = distributed.init("gloo")
local = slice(info.rank * {GLOBAL // 2}, (info.rank + 1) * {GLOBAL // 2})
g = torch.Generator().manual_seed(1)
weak = torch.rand({GLOBAL}, 3, {SIZE}, {SIZE}, generator=g)
standard = torch.rand({GLOBAL}, 3, {SIZE}, {SIZE}, generator=g)
out = {{}}
for variant in ("paper", "official"):
    model = build_model(resolve("{DEMO}", {TINY!r} + ["variant=" + variant]), device)
    loss, _ = model(weak[local], standard[local])
    loss.backward()
    grad = model.encoder.conv1.weight.grad.clone()
    torch.distributed.all_reduce(grad)  # what DDP does: the mean over ranks
    out[variant] = {{"loss": loss.item(), "grad": (grad / info.world_size).flatten()[:50].tolist(),
                    "sync_bn": type(model.encoder.bn1).__name__}}
    if variant == "official":
        h, hm = model.encoder(weak[local]).detach(), model.momentum_encoder(weak[local]).detach()
        assign = model.assignment(h, distributed.gather(hm))
        out[variant].update(assign=assign.tolist(), h=h.tolist(), hm=distributed.gather(hm).tolist())
json.dump(out, open(sys.argv[1] + f"/rank{{info.rank}}.json", "w"))
"""


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    script = folder / "worker.py"
    script.write_text(WORKER)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             "--master_port=29533", str(script), str(folder)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(2)]


def single_process(variant):
    model = build_model(resolve(DEMO, [*TINY, f"variant={variant}"]), torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    weak, standard = torch.rand(GLOBAL, 3, SIZE, SIZE, generator=g), torch.rand(GLOBAL, 3, SIZE, SIZE, generator=g)
    loss, _ = model(weak, standard)
    loss.backward()
    return loss.item(), model.encoder.conv1.weight.grad.flatten()[:50]


@pytest.mark.slow
def test_paper_variant_two_ranks_equal_one_process_on_the_global_batch(ranks):
    loss, grad = single_process("paper")
    for rank in ranks:
        assert rank["paper"]["sync_bn"] == "NaiveSyncBatchNorm"
        assert rank["paper"]["loss"] == pytest.approx(loss, rel=1e-5)
        # fp32 through 20 BN layers (sync BN uses E[x^2] - E[x]^2): equal to 1e-3 of the gradient's norm.
        assert (torch.tensor(rank["paper"]["grad"]) - grad).norm() < 1e-3 * grad.norm()


@pytest.mark.slow
def test_official_variant_assignment_is_local_by_global_with_reduced_sinkhorn(ranks):
    for rank in ranks:
        assign = torch.tensor(rank["official"]["assign"])
        assert assign.shape == (GLOBAL // 2, GLOBAL)
        torch.testing.assert_close(assign.sum(dim=1), torch.ones(GLOBAL // 2))
    # The sharded Sinkhorn is the single-process Sinkhorn of the full matrix, split by rows.
    h = torch.cat([torch.tensor(rank["official"]["h"]) for rank in ranks])
    hm = torch.tensor(ranks[0]["official"]["hm"])
    full = sinkhorn(cosine_similarity_matrix(h, hm))
    stacked = torch.cat([torch.tensor(rank["official"]["assign"]) for rank in ranks])
    torch.testing.assert_close(stacked, full, rtol=1e-4, atol=1e-6)
    # Gradients are local in the official variant: the ranks' losses differ.
    assert ranks[0]["official"]["loss"] != ranks[1]["official"]["loss"]


def test_distributed_sinkhorn_on_one_rank_is_the_b2_sinkhorn():
    scores = cosine_similarity_matrix(torch.randn(12, 8), torch.randn(12, 8))
    assert distributed.world_size() == 1
    torch.testing.assert_close(sinkhorn_distributed(scores), sinkhorn(scores))


@pytest.mark.slow
def test_engine_under_torchrun_matches_one_process(tmp_path):
    """The whole engine (DDP wrapper, rank shards, sync BN, rank-0 saving) on 2 gloo ranks.

    A small lr keeps the tiny-batch run out of the regime where fp32 rounding differences
    between the two reductions grow step after step.
    """
    args = [DEMO, "data.train_size=32", "optim.batch_size=8", "epochs=1", "optim.base_lr=0.01", *TINY,
            "run.log_every_steps=1", "run.num_threads=1"]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             "--master_port=29534", "-m", "pretrain", *args, f"output_dir={tmp_path / 'ddp'}"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr[-3000:]
    from pretrain.engine import train

    single = torch.load(train(resolve(args[0], [*args[1:], f"output_dir={tmp_path / 'one'}"])), weights_only=True)
    ddp = torch.load(tmp_path / "ddp" / "checkpoint.pth", weights_only=True)
    assert ddp["global_step"] == single["global_step"] == 4
    losses = [[json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
               if '"loss"' in line] for run in ("ddp", "one")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    for key in ("encoder", "momentum_encoder"):
        names = [name for name, tensor in single[key].items() if tensor.is_floating_point()]
        ours = torch.cat([ddp[key][name].flatten() for name in names])
        reference = torch.cat([single[key][name].flatten() for name in names])
        assert (ours - reference).norm() <= 1e-4 * reference.norm(), key
