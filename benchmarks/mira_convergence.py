"""MIRA's fixed point (Eq. 7) against Sinkhorn-Knopp on the same logits: iterations to a marginal error.

MIRA Sec. 4.3 / Figure 2 claims the fixed-point iteration converges in fewer steps than SwAV's
Sinkhorn-Knopp (batch 512). Counts iterations, not time (so the loaded machine does not matter).
Scores: cosines of clustered unit embeddings (d = 256) with K = 3000 unit prototypes (Sec. 4.1);
MIRA at tau_t 0.225, beta 2/3 (Sec. 4.1), Sinkhorn at eps 0.05 (SwAV ``--epsilon``). Marginal
error after n iterations: the L1 distance between the column marginal of the current assignment
and the algorithm's target marginal (MIRA: its converged fixed point ``wbar*``, 2000 steps;
Sinkhorn: the uniform 1/K, after its row normalisation, as SwAV's codes are used).

    .venv/bin/python -m benchmarks.mira_convergence [--batches 5] [--batch 512] [--max-iters 300]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from pretrain.losses.mira import BETA, TAU_T

THRESHOLDS = (1e-2, 1e-3, 1e-4, 1e-6, 1e-8)


def scores(batch: int, prototypes: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """Cosine scores of embeddings drawn around 100 random centres against random unit prototypes."""
    centres = F.normalize(torch.randn(100, dim, generator=gen, dtype=torch.float64), dim=1)
    z = centres[torch.randint(0, 100, (batch,), generator=gen)] + 0.5 * torch.randn(batch, dim, generator=gen,
                                                                                    dtype=torch.float64) / dim**0.5
    protos = F.normalize(torch.randn(prototypes, dim, generator=gen, dtype=torch.float64), dim=1)
    return F.normalize(z, dim=1) @ protos.T


def mira_errors(s: torch.Tensor, iters: int, tau: float = TAU_T, beta: float = BETA) -> list[float]:
    """Eq. 7 steps (as ``pretrain.losses.mira.mira_marginal``), the Eq. 5 marginal's L1 error after each."""
    powered = F.softmax(s / tau / (1 - beta), dim=1)

    def marginal(u):
        w = u.pow(-beta / (1 - beta)) * powered
        return (w / w.sum(dim=1, keepdim=True)).mean(dim=0)

    u, history = powered.mean(dim=0).pow(1 - beta), []
    for n in range(max(iters, 2000)):
        if n < iters:
            history.append(marginal(u))
        weighted = powered / (u.pow(-beta / (1 - beta)) * powered).sum(dim=1, keepdim=True)
        u = weighted.mean(dim=0).pow(1 - beta)
    target = marginal(u)
    return [(m - target).abs().sum().item() for m in history]


def sinkhorn_errors(s: torch.Tensor, iters: int, eps: float = 0.05) -> list[float]:
    """SwAV ``distributed_sinkhorn`` steps (as ``pretrain.losses.swav.sinkhorn_codes``), column L1 error after each."""
    q = torch.exp((s - s.max()) / eps).T
    q /= q.sum()
    n_proto, n_samples = q.shape
    errors = []
    for _ in range(iters):
        codes = q / q.sum(dim=0, keepdim=True)  # rows of the codes sum to 1, as used
        errors.append((codes.mean(dim=1) - 1.0 / n_proto).abs().sum().item())
        q /= q.sum(dim=1, keepdim=True) * n_proto
        q /= q.sum(dim=0, keepdim=True) * n_samples
    return errors


def first_below(errors: list[float], threshold: float) -> int | None:
    return next((n for n, e in enumerate(errors) if e <= threshold), None)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch", type=int, default=512)  # Sec. 4.3: batch size 512
    parser.add_argument("--prototypes", type=int, default=3000)  # Sec. 4.1: K = 3000
    parser.add_argument("--max-iters", type=int, default=300)
    args = parser.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    counts = {"mira": {t: [] for t in THRESHOLDS}, "sinkhorn": {t: [] for t in THRESHOLDS}}
    for _ in range(args.batches):
        s = scores(args.batch, args.prototypes, 256, gen)
        runs = {"mira": mira_errors(s, args.max_iters), "sinkhorn": sinkhorn_errors(s, args.max_iters)}
        for name, errors in runs.items():
            for t in THRESHOLDS:
                counts[name][t].append(first_below(errors, t))
    print(f"batch {args.batch}, K {args.prototypes}, {args.batches} batches; iterations until the marginal "
          f"L1 error <= threshold (None: not within {args.max_iters})")
    for t in THRESHOLDS:
        print(f"  {t:g}: MIRA {counts['mira'][t]}  Sinkhorn {counts['sinkhorn'][t]}")


if __name__ == "__main__":
    main()
