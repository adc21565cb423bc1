"""MIRA's loss on 2 gloo ranks equals 1 process on the same global batch, in float64 (to 1e-9 rel).

The only batch-coupled statistic of MIRA is the marginal of Eq. 7 (the batch mean over samples),
all-reduced over ranks; each rank holds half of the global batch of student and teacher logits.
The mean of the ranks' losses (what DDP's gradient averaging optimises) must equal the
single-process loss, each rank's pseudo-labels the single-process rows, and each rank's
gradient divided by the world size the single-process gradient of its rows.
"""

import pytest
import torch
from ddp_harness import run_worker

from pretrain.losses.mira import mira_loss, mira_pseudo_labels

GLOBAL, K, CROPS = 16, 12, 3

WORKER = f"""
from pretrain.losses.mira import mira_loss, mira_pseudo_labels
g = torch.Generator().manual_seed(3)
student = [3 * torch.randn({GLOBAL}, {K}, generator=g, dtype=torch.float64) for _ in range({CROPS})]
teacher = [3 * torch.randn({GLOBAL}, {K}, generator=g, dtype=torch.float64) for _ in range(2)]
rows = slice(info.rank * {GLOBAL // 2}, (info.rank + 1) * {GLOBAL // 2})
local = [s[rows].clone().requires_grad_(True) for s in student]
loss = mira_loss(local, [t[rows] for t in teacher])
loss.backward()
out = {{"loss": loss.item(), "labels": mira_pseudo_labels(teacher[0][rows]).tolist(),
        "grads": [x.grad.tolist() for x in local]}}
"""


def single_process():
    g = torch.Generator().manual_seed(3)
    student = [(3 * torch.randn(GLOBAL, K, generator=g, dtype=torch.float64)).requires_grad_(True)
               for _ in range(CROPS)]
    teacher = [3 * torch.randn(GLOBAL, K, generator=g, dtype=torch.float64) for _ in range(2)]
    loss = mira_loss(student, teacher)
    loss.backward()
    return loss.item(), mira_pseudo_labels(teacher[0]), [s.grad for s in student]


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(tmp_path):
    ranks = run_worker(tmp_path, WORKER)
    loss, labels, grads = single_process()
    assert abs(sum(r["loss"] for r in ranks) / 2 - loss) <= 1e-9 * abs(loss)
    half = GLOBAL // 2
    for rank, out in enumerate(ranks):
        rows = slice(rank * half, (rank + 1) * half)
        torch.testing.assert_close(torch.tensor(out["labels"], dtype=torch.float64), labels[rows],
                                   rtol=1e-9, atol=1e-12)
        for got, want in zip(out["grads"], grads, strict=True):
            torch.testing.assert_close(torch.tensor(got, dtype=torch.float64) / 2, want[rows], rtol=1e-9, atol=1e-12)
