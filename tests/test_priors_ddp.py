"""The sharded assignments with a power-law prior on 2 gloo ranks equal 1 process, in float64 (to 1e-9 rel).

ReSA's ``sinkhorn_distributed`` (the prior ranked by all-reduced target masses), SwAV's
``sinkhorn_codes`` and MIRA's pseudo-labels: each rank holds half of the global batch's rows and
must produce exactly those rows of the single-process assignment.
"""

import pytest
import torch
from ddp_harness import run_worker

from pretrain.losses.mira import mira_pseudo_labels
from pretrain.losses.priors import power_law_prior
from pretrain.losses.resa import sinkhorn_distributed
from pretrain.losses.swav import sinkhorn_codes

GLOBAL, K, ITERS = 12, 8, 10

WORKER = f"""
from pretrain.losses.mira import mira_pseudo_labels
from pretrain.losses.priors import power_law_prior
from pretrain.losses.resa import sinkhorn_distributed
from pretrain.losses.swav import sinkhorn_codes
g = torch.Generator().manual_seed(5)
resa = torch.rand({GLOBAL}, {GLOBAL}, generator=g, dtype=torch.float64)
swav = torch.rand({GLOBAL}, {K}, generator=g, dtype=torch.float64)
rows = slice(info.rank * {GLOBAL // 2}, (info.rank + 1) * {GLOBAL // 2})
out = {{"resa": sinkhorn_distributed(resa[rows], 0.05, {ITERS}, power_law_prior({GLOBAL}, 0.5)).tolist(),
        "swav": sinkhorn_codes(swav[rows], 0.05, {ITERS}, power_law_prior({K}, 0.5)).tolist(),
        "mira": mira_pseudo_labels(3 * swav[rows], 0.225, 2 / 3, {ITERS}, power_law_prior({K}, 0.5)).tolist()}}
"""


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process_with_a_power_law_prior(tmp_path):
    ranks = run_worker(tmp_path, WORKER)
    g = torch.Generator().manual_seed(5)
    resa = torch.rand(GLOBAL, GLOBAL, generator=g, dtype=torch.float64)
    swav = torch.rand(GLOBAL, K, generator=g, dtype=torch.float64)
    want = {"resa": sinkhorn_distributed(resa, 0.05, ITERS, power_law_prior(GLOBAL, 0.5)),
            "swav": sinkhorn_codes(swav, 0.05, ITERS, power_law_prior(K, 0.5)),
            "mira": mira_pseudo_labels(3 * swav, 0.225, 2 / 3, ITERS, power_law_prior(K, 0.5))}
    for rank, out in enumerate(ranks):
        rows = slice(rank * GLOBAL // 2, (rank + 1) * GLOBAL // 2)
        for name, full in want.items():
            torch.testing.assert_close(torch.tensor(out[name], dtype=torch.float64), full[rows],
                                       rtol=1e-9, atol=1e-12, msg=lambda m, name=name: f"{name}: {m}")
