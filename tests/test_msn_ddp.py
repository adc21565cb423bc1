"""MSN / PMSN loss on 2 gloo ranks equals 1 process on the same global batch, in float64 (to 1e-9 rel).

Batch-coupled statistics (pretrain/losses/msn.py): the mean prediction ``pbar`` of PMSN Eq. 9
(gathered with gradient) and the Sinkhorn balancing of the targets (sums all-reduced, as the
authors' ``distributed_sinkhorn``). Each rank holds half of the global batch of every view. The
mean of the ranks' losses must equal the single-process loss, each rank's targets the
single-process rows, each rank's anchor gradient divided by the world size (DDP's averaging) the
single-process gradient of its rows, and the ranks' mean prototype gradient the single-process one.
"""

import pytest
import torch
from ddp_harness import run_worker

from pretrain.losses.msn import msn_loss, msn_targets
from pretrain.losses.priors import power_law_prior

GLOBAL, K, D, VIEWS, TAU = 12, 10, 6, 3, 0.25

SETUP = f"""
g = torch.Generator().manual_seed(5)
anchors = [torch.randn({GLOBAL}, {D}, generator=g, dtype=torch.float64) for _ in range({VIEWS})]
target = torch.randn({GLOBAL}, {D}, generator=g, dtype=torch.float64)
prototypes = torch.randn({K}, {D}, generator=g, dtype=torch.float64)
prior = power_law_prior({K}, {TAU})
"""

WORKER = f"""
from pretrain.losses.msn import msn_loss, msn_targets
from pretrain.losses.priors import power_law_prior
{SETUP}
rows = slice(info.rank * {GLOBAL // 2}, (info.rank + 1) * {GLOBAL // 2})
local = torch.cat([a[rows] for a in anchors]).requires_grad_(True)
protos = prototypes.clone().requires_grad_(True)
loss, _ = msn_loss(local, target[rows], protos, prior, prior_weight=5.0)
loss.backward()
out = {{"loss": loss.item(), "targets": msn_targets(target[rows], prototypes, prior).tolist(),
        "anchor_grad": local.grad.tolist(), "proto_grad": protos.grad.tolist()}}
"""


def single_process():
    namespace = {"torch": torch, "power_law_prior": power_law_prior}
    exec(SETUP, namespace)
    anchors = torch.stack(namespace["anchors"]).requires_grad_(True)  # (VIEWS, GLOBAL, D)
    protos = namespace["prototypes"].clone().requires_grad_(True)
    loss, _ = msn_loss(anchors.reshape(-1, D), namespace["target"], protos, namespace["prior"], prior_weight=5.0)
    loss.backward()
    targets = msn_targets(namespace["target"], namespace["prototypes"], namespace["prior"])
    return loss.item(), targets, anchors.grad, protos.grad


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(tmp_path):
    ranks = run_worker(tmp_path, WORKER)
    loss, targets, anchor_grad, proto_grad = single_process()
    assert abs(sum(r["loss"] for r in ranks) / 2 - loss) <= 1e-9 * abs(loss)
    half = GLOBAL // 2
    for rank, out in enumerate(ranks):
        rows = slice(rank * half, (rank + 1) * half)
        torch.testing.assert_close(torch.tensor(out["targets"], dtype=torch.float64), targets[rows],
                                   rtol=1e-9, atol=1e-12)
        got = torch.tensor(out["anchor_grad"], dtype=torch.float64).reshape(VIEWS, half, D) / 2
        torch.testing.assert_close(got, anchor_grad[:, rows], rtol=1e-9, atol=1e-12)
    mean_proto = sum(torch.tensor(r["proto_grad"], dtype=torch.float64) for r in ranks) / 2
    torch.testing.assert_close(mean_proto, proto_grad, rtol=1e-9, atol=1e-12)
