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

ROOT = str(Path(__file__).resolve().parents[1])
DEMO = str(Path(ROOT) / "configs" / "pretrain" / "demo_fmnist_resa.yaml")
TINY = ["model.projector_hidden_dim=32", "model.projector_out_dim=16"]
GLOBAL, SIZE = 8, 32

# fp32 bound, measured on this test's inputs (conv1 gradient, relative norm of the DDP - 1-process
# difference): 2.0e-3 on a 2-core AMD EPYC (AVX2), 1e-4 on AVX-512 machines. Sinkhorn divides the
# scores by eps = 0.05 before exp, so fp32 rounding of a different reduction order is amplified ~20x.
# 10x the worst measurement, so this check guards against gross errors only; the fp64 runs are the
# equivalence test (agreement ~1e-13 loss, ~1e-11 gradient).
FP32_GRAD_BOUND = 2e-2
FP64_REL = 1e-9

WORKER = f"""
import json, sys, torch
from pretrain import distributed
from pretrain.config import resolve
from pretrain.engine import build_model
torch.set_num_threads(1)
info, device = distributed.init("gloo")
local = slice(info.rank * {GLOBAL // 2}, (info.rank + 1) * {GLOBAL // 2})
out = {{}}
for variant, dtype in (("paper", "float64"), ("paper", "float32"), ("official", "float64")):
    g = torch.Generator().manual_seed(1)
    weak = torch.rand({GLOBAL}, 3, {SIZE}, {SIZE}, generator=g, dtype=getattr(torch, dtype))
    standard = torch.rand({GLOBAL}, 3, {SIZE}, {SIZE}, generator=g, dtype=getattr(torch, dtype))
    model = build_model(resolve("{DEMO}", {TINY!r} + ["variant=" + variant, "run.dtype=" + dtype]), device)
    loss, _ = model(weak[local], standard[local])
    loss.backward()
    grad = model.encoder.conv1.weight.grad.clone()
    torch.distributed.all_reduce(grad)  # what DDP does: the mean over ranks
    loss_sum = loss.detach().clone()
    torch.distributed.all_reduce(loss_sum)
    key = variant + "_" + dtype
    out[key] = {{"loss": loss.item(), "mean_loss": loss_sum.item() / info.world_size,
                "grad": (grad / info.world_size).flatten().tolist(), "sync_bn": type(model.encoder.bn1).__name__}}
    if variant == "official":
        h, hm = model.encoder(weak[local]).detach(), model.momentum_encoder(weak[local]).detach()
        assign = model.assignment(h, distributed.gather(hm))
        out[key].update(assign=assign.tolist(), h=h.tolist(), hm=distributed.gather(hm).tolist())
json.dump(out, open(sys.argv[1] + f"/rank{{info.rank}}.json", "w"))
distributed.shutdown()
"""


def torchrun(*args: str) -> list[str]:
    """2 gloo ranks on one machine; ``--standalone`` rendezvous on a free port."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    script = folder / "worker.py"
    script.write_text(WORKER)
    result = subprocess.run(torchrun(str(script), str(folder)), capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": ROOT}, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(2)]


def single_process(variant, dtype="float64"):
    model = build_model(resolve(DEMO, [*TINY, f"variant={variant}", f"run.dtype={dtype}"]), torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    weak = torch.rand(GLOBAL, 3, SIZE, SIZE, generator=g, dtype=getattr(torch, dtype))
    standard = torch.rand(GLOBAL, 3, SIZE, SIZE, generator=g, dtype=getattr(torch, dtype))
    loss, _ = model(weak, standard)
    loss.backward()
    return loss.item(), model.encoder.conv1.weight.grad.flatten()


def relative_difference(ours, reference: torch.Tensor) -> float:
    return ((torch.tensor(ours, dtype=reference.dtype) - reference).norm() / reference.norm()).item()


@pytest.mark.slow
def test_paper_variant_two_ranks_equal_one_process_on_the_global_batch(ranks):
    loss, grad = single_process("paper")
    for rank in ranks:
        assert rank["paper_float64"]["sync_bn"] == "NaiveSyncBatchNorm"
        assert rank["paper_float64"]["loss"] == pytest.approx(loss, rel=FP64_REL, abs=0)
        assert relative_difference(rank["paper_float64"]["grad"], grad) <= FP64_REL


@pytest.mark.slow
def test_paper_variant_in_float32_stays_within_the_measured_rounding_bound(ranks):
    loss, grad = single_process("paper", "float32")
    for rank in ranks:
        assert rank["paper_float32"]["loss"] == pytest.approx(loss, rel=1e-5)
        assert relative_difference(rank["paper_float32"]["grad"], grad) <= FP32_GRAD_BOUND


@pytest.mark.slow
def test_official_variant_assignment_is_local_by_global_with_reduced_sinkhorn(ranks):
    for rank in ranks:
        assign = torch.tensor(rank["official_float64"]["assign"], dtype=torch.float64)
        assert assign.shape == (GLOBAL // 2, GLOBAL)
        torch.testing.assert_close(assign.sum(dim=1), torch.ones(GLOBAL // 2, dtype=torch.float64),
                                   rtol=0, atol=FP64_REL)
    # The sharded Sinkhorn is the single-process Sinkhorn of the full matrix, split by rows.
    h = torch.cat([torch.tensor(rank["official_float64"]["h"], dtype=torch.float64) for rank in ranks])
    hm = torch.tensor(ranks[0]["official_float64"]["hm"], dtype=torch.float64)
    full = sinkhorn(cosine_similarity_matrix(h, hm))
    stacked = torch.cat([torch.tensor(rank["official_float64"]["assign"], dtype=torch.float64) for rank in ranks])
    assert relative_difference(stacked.tolist(), full) <= FP64_REL
    # Gradients are local in the official variant: the ranks' losses differ, and their mean (what is
    # averaged with the gradients) is the single-process loss of the global batch.
    assert ranks[0]["official_float64"]["loss"] != ranks[1]["official_float64"]["loss"]
    loss, grad = single_process("official")
    for rank in ranks:
        assert rank["official_float64"]["mean_loss"] == pytest.approx(loss, rel=FP64_REL, abs=0)
        assert relative_difference(rank["official_float64"]["grad"], grad) <= FP64_REL


def test_distributed_sinkhorn_on_one_rank_is_the_b2_sinkhorn():
    scores = cosine_similarity_matrix(torch.randn(12, 8), torch.randn(12, 8))
    assert distributed.world_size() == 1
    torch.testing.assert_close(sinkhorn_distributed(scores), sinkhorn(scores))


@pytest.mark.slow
def test_engine_under_torchrun_matches_one_process(tmp_path):
    """The whole engine (DDP wrapper, rank shards, sync BN, rank-0 saving) on 2 gloo ranks, in fp64.

    Four steps of training, compared step by step (logged losses) and at the end (every weight
    of both encoders) against one process on the same global batches.
    """
    args = [DEMO, "data.train_size=32", "optim.batch_size=8", "epochs=1", *TINY, "run.dtype=float64",
            "run.log_every_steps=1", "run.num_threads=1"]
    result = subprocess.run(torchrun("-m", "pretrain", *args, f"output_dir={tmp_path / 'ddp'}"),
                            capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr[-3000:]
    from pretrain.engine import train

    single = torch.load(train(resolve(args[0], [*args[1:], f"output_dir={tmp_path / 'one'}"])), weights_only=True)
    ddp = torch.load(tmp_path / "ddp" / "checkpoint.pth", weights_only=True)
    assert ddp["global_step"] == single["global_step"] == 4
    losses = [[json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
               if '"loss"' in line] for run in ("ddp", "one")]
    assert len(losses[0]) == 4 and losses[0] == pytest.approx(losses[1], rel=FP64_REL, abs=0)
    for key in ("encoder", "momentum_encoder"):
        names = [name for name, tensor in single[key].items() if tensor.is_floating_point()]
        ours = torch.cat([ddp[key][name].flatten() for name in names])
        reference = torch.cat([single[key][name].flatten() for name in names])
        assert reference.dtype == torch.float64
        assert (ours - reference).norm() <= FP64_REL * reference.norm(), key


@pytest.mark.slow
def test_engine_logs_the_mean_of_the_official_variants_rank_losses(tmp_path):
    """The official variant's ranks hold different shares of the loss: the log shows their mean, in fp64."""
    args = [DEMO, "data.train_size=16", "optim.batch_size=8", "epochs=1", *TINY, "variant=official",
            "run.dtype=float64", "run.log_every_steps=1", "run.num_threads=1", "monitor.every_epochs=0"]
    result = subprocess.run(torchrun("-m", "pretrain", *args, f"output_dir={tmp_path / 'ddp'}"),
                            capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr[-3000:]
    from pretrain.engine import train

    train(resolve(args[0], [*args[1:], f"output_dir={tmp_path / 'one'}"]))
    losses = [[json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
               if '"loss"' in line] for run in ("ddp", "one")]
    assert len(losses[0]) == len(losses[1]) == 2
    assert losses[0] == pytest.approx(losses[1], rel=FP64_REL, abs=0)
