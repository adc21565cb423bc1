"""DSA couples the batch (regulator, prior, k-NN score over all 2N views): 2 gloo ranks = 1 process.

Each rank takes its half of a global batch of 16 in float64 (SimCLR + DSA, sync BN); after
backward its gradients, averaged over ranks as DDP does, must equal the single-process gradients
of the whole batch (encoder and ``f_s``). Every rank holds the same global DSA terms; SimCLR's
own loss is each rank's rows' mean, so the ranks' mean loss is the global loss.
"""

import pytest
import torch
from conftest import repo_path
from ddp_harness import run_worker

from pretrain.config import resolve
from pretrain.engine import build_model

DEMO = repo_path("configs/pretrain/demo_fmnist_resa.yaml")
GLOBAL, SIZE = 16, 8
OVERRIDES = ["method=simclr", "arch=resnet18_cifar", f"optim.batch_size={GLOBAL}", "model.projector_hidden_dim=32",
             "model.projector_out_dim=16", "dsa.enabled=true", "dsa.hidden_dim=16", "dsa.knn=4", "dsa.aux_pool=4"]
PROBES = ("encoder.conv1.weight", "encoder.layer4.1.bn2.weight", "dsa.similarity.first.weight",
          "dsa.similarity.second.bias")

WORKER = f"""
from pretrain.config import resolve
from pretrain.engine import build_model
local = slice(info.rank * {GLOBAL // 2}, (info.rank + 1) * {GLOBAL // 2})
g = torch.Generator().manual_seed(1)
views = [torch.rand({GLOBAL}, 3, {SIZE}, {SIZE}, generator=g, dtype=torch.float64) for _ in range(2)]
model = build_model(resolve("{DEMO}", {OVERRIDES!r}), device).double()
loss, logs = model(*(v[local] for v in views))
loss.backward()
grads = {{}}
for name in {PROBES!r}:
    grad = dict(model.named_parameters())[name].grad.clone()
    torch.distributed.all_reduce(grad)  # DDP: the mean over ranks
    grads[name] = (grad / info.world_size).flatten().tolist()
out = {{"loss": loss.item(), "grads": grads, "dsa_am": logs["dsa_am"]}}
"""


@pytest.mark.slow
def test_two_ranks_equal_one_process_in_float64(tmp_path, one_torch_thread):
    ranks = run_worker(tmp_path, WORKER, timeout=900)

    g = torch.Generator().manual_seed(1)
    views = [torch.rand(GLOBAL, 3, SIZE, SIZE, generator=g, dtype=torch.float64) for _ in range(2)]
    model = build_model(resolve(DEMO, OVERRIDES), torch.device("cpu")).double()
    loss, logs = model(*views)
    loss.backward()
    parameters = dict(model.named_parameters())
    assert sum(rank["loss"] for rank in ranks) / 2 == pytest.approx(loss.item(), rel=1e-9)
    for rank in ranks:
        assert rank["dsa_am"] == pytest.approx(logs["dsa_am"], rel=1e-9)
        for name in PROBES:
            ours, reference = torch.tensor(rank["grads"][name], dtype=torch.float64), parameters[name].grad.flatten()
            assert reference.norm() > 0
            assert (ours - reference).norm() <= 1e-9 * reference.norm(), name
