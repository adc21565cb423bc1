"""``variant: official`` under 2 gloo ranks: the mean of the ranks' losses is the global-batch loss.

The released code (winci-ai/resa ``method/resa.py``) leaves each rank the row cross-entropy of
its own samples against the gathered momentum targets, with a rank-sharded Sinkhorn. Its rows
partition the single-process problem of the global batch, so the mean over ranks of the losses
(what the engine logs) and DDP's mean of the gradients equal the single-process loss and
gradient; checked in float64 (ReSA module and sync BN in fp64).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pretrain.config import resolve
from pretrain.engine import build_model

DEMO = "configs/pretrain/demo_fmnist_resa.yaml"
TINY = ["model.projector_hidden_dim=32", "model.projector_out_dim=16", "variant=official"]
GLOBAL, SIZE = 8, 32
ROOT = str(Path(__file__).resolve().parents[1])
PARAMS = ("encoder.conv1.weight", "encoder.layer4.1.bn2.weight", "projector.0.weight")

WORKER = f"""
import json, sys, torch
from pretrain import distributed
from pretrain.config import resolve
from pretrain.engine import build_model
torch.set_num_threads(1)
info, device = distributed.init("gloo")
local = slice(info.rank * {GLOBAL // 2}, (info.rank + 1) * {GLOBAL // 2})
g = torch.Generator().manual_seed(1)
views = [torch.rand({GLOBAL}, 3, {SIZE}, {SIZE}, generator=g, dtype=torch.float64) for _ in range(2)]
model = build_model(resolve("{DEMO}", {TINY!r}), device).double()
loss, _ = model(*[view[local] for view in views])
loss.backward()
params = dict(model.named_parameters())
grads = {{}}
for name in {PARAMS!r}:
    grad = params[name].grad.clone()
    torch.distributed.all_reduce(grad)  # what DDP does: the mean over ranks
    grads[name] = (grad / info.world_size).flatten().tolist()
json.dump({{"loss": loss.item(), "grads": grads}}, open(sys.argv[1] + f"/rank{{info.rank}}.json", "w"))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={free_port()}", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_mean_of_rank_losses_and_averaged_gradients_are_the_global_batch_ones_fp64(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    result = torchrun(str(script), str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["loss"] != ranks[1]["loss"]  # each rank holds its own rows' share

    model = build_model(resolve(DEMO, TINY), torch.device("cpu")).double()
    g = torch.Generator().manual_seed(1)
    views = [torch.rand(GLOBAL, 3, SIZE, SIZE, generator=g, dtype=torch.float64) for _ in range(2)]
    loss, _ = model(*views)
    loss.backward()
    mean = (ranks[0]["loss"] + ranks[1]["loss"]) / 2
    assert abs(mean - loss.item()) <= 1e-9 * abs(loss.item())
    params = dict(model.named_parameters())
    for name in PARAMS:
        reference = params[name].grad.flatten()
        averaged = torch.tensor(ranks[0]["grads"][name], dtype=torch.float64)
        assert (averaged - reference).norm() <= 1e-9 * reference.norm(), name


@pytest.mark.slow
def test_engine_logs_the_mean_of_the_ranks_losses(tmp_path):
    """The logged loss of a 2-rank run equals the single-process run's on the same global batch."""
    args = [DEMO, "data.train_size=16", "optim.batch_size=8", "epochs=1", "optim.base_lr=0.01", *TINY,
            "run.log_every_steps=1", "run.num_threads=1", "monitor.every_epochs=0"]
    result = torchrun("-m", "pretrain", *args, f"output_dir={tmp_path / 'ddp'}")
    assert result.returncode == 0, result.stderr[-3000:]
    from pretrain.engine import train

    train(resolve(args[0], [*args[1:], f"output_dir={tmp_path / 'one'}"]))
    losses = [[json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
               if '"loss"' in line] for run in ("ddp", "one")]
    assert len(losses[0]) == len(losses[1]) == 2
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
