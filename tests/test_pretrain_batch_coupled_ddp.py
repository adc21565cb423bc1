"""2 gloo ranks equal 1 process on the same global batch, in float64, for the batch-coupled methods.

SwAV (Sinkhorn normalisations all-reduced), Barlow Twins (cross-correlation), VICReg
(variance/covariance), W-MSE / CW-RGP / INTL (whitening): each rank takes its half of the
global batch; after backward its gradients are averaged over ranks (what DDP does) and must
equal the single-process gradients of the whole batch. Sync BN (NaiveSyncBatchNorm on CPU)
makes the encoder's BN statistics global too.
"""

import os

import pytest
import torch
from ddp_harness import ROOT, run_worker

from pretrain.config import resolve
from pretrain.engine import build_model

DEMO = os.path.join(ROOT, "configs/pretrain/demo_fmnist_resa.yaml")
GLOBAL, SIZE = 16, 8
HEADS = ["model.projector_hidden_dim=32", "model.projector_out_dim=16"]
OVERRIDES = {
    "swav": [*HEADS, "loss.num_prototypes=6"],
    "barlow_twins": HEADS,
    "vicreg": HEADS,
    "wmse": [*HEADS, "model.projector_out_dim=4", "loss.w_size=8", "loss.w_iter=2"],
    "cwrgp": [*HEADS, "loss.w_size=4", "loss.group=2"],
    "intl": HEADS,
}
PROBES = ("encoder.conv1.weight", "encoder.layer4.1.bn2.weight", "projector.0.weight")

WORKER = f"""
from pretrain.config import resolve
from pretrain.engine import build_model
overrides = {OVERRIDES!r}
local = slice(info.rank * {GLOBAL // 2}, (info.rank + 1) * {GLOBAL // 2})
out = {{}}
for method, extra in overrides.items():
    g = torch.Generator().manual_seed(1)
    views = [torch.rand({GLOBAL}, 3, {SIZE}, {SIZE}, generator=g, dtype=torch.float64) for _ in range(2)]
    model = build_model(resolve("{DEMO}", ["method=" + method, "arch=resnet18_cifar",
                                           "optim.batch_size={GLOBAL}", *extra]), device).double()
    loss, _ = model(*(v[local] for v in views))
    loss.backward()
    grads = {{}}
    for name, p in model.named_parameters():
        if p.grad is not None and (name in {PROBES!r} or name.startswith("prototypes")):
            grad = p.grad.clone()
            torch.distributed.all_reduce(grad)  # DDP: the mean over ranks
            grads[name] = (grad / info.world_size).flatten().tolist()
    out[method] = {{"loss": loss.item(), "grads": grads, "bn": type(model.encoder.bn1).__name__}}
"""


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_worker(tmp_path_factory.mktemp("ddp_b"), WORKER, timeout=900)


def single_process(method):
    g = torch.Generator().manual_seed(1)
    views = [torch.rand(GLOBAL, 3, SIZE, SIZE, generator=g, dtype=torch.float64) for _ in range(2)]
    model = build_model(resolve(DEMO, [f"method={method}", "arch=resnet18_cifar", f"optim.batch_size={GLOBAL}",
                                       *OVERRIDES[method]]), torch.device("cpu")).double()
    loss, _ = model(*views)
    loss.backward()
    return loss.item(), {name: p.grad.flatten() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(OVERRIDES))
def test_two_ranks_equal_one_process_in_float64(method, ranks, one_torch_thread):
    loss, grads = single_process(method)
    if method == "swav":  # each rank's loss is its samples' mean; DDP's average is the global mean
        assert sum(rank[method]["loss"] for rank in ranks) / 2 == pytest.approx(loss, rel=1e-9)
    else:  # the loss of the gathered global batch, the same on every rank
        for rank in ranks:
            assert rank[method]["loss"] == pytest.approx(loss, rel=1e-9)
    for rank in ranks:
        assert rank[method]["bn"] == "NaiveSyncBatchNorm"
        names = set(rank[method]["grads"])
        assert set(PROBES) <= names and (method != "swav" or "prototypes.weight" in names)
        for name in names:
            ours, reference = torch.tensor(rank[method]["grads"][name], dtype=torch.float64), grads[name]
            assert (ours - reference).norm() <= 1e-9 * reference.norm(), f"{method} {name}"
