"""SwAV (Caron et al., NeurIPS 2020, Eqs. 2-3) as pure functions: Sinkhorn codes, swapped prediction.

Reference: facebookresearch/swav ``main_swav.py``: ``distributed_sinkhorn`` (Eq. 3 with
epsilon 0.05 and 3 iterations, the defaults of ``--epsilon`` and ``--sinkhorn_iterations``)
and the loss of ``train``: for each crop used for assignment, the codes ``q`` (optionally
computed with the queue's scores in front, then cut to the batch) are predicted from every
*other* crop's prototype scores at temperature 0.1 (``--temperature``), averaged over
crops. solo-learn's ``solo/losses/swav.py`` ``swav_loss_func`` computes the same average.

Non-uniform prior (``prior``, :mod:`pretrain.losses.priors`; an extension after PMSN Section 5):
the Sinkhorn's equipartition gives each prototype a total mass of ``1/K`` over the batch, the
codes' *column* marginal. ``prior`` replaces that ``1/K`` by ``prior[k]`` (prototype ``k``,
in index order: the prototypes are learnable, so their order is a free labelling, as PMSN's
``[p_PL]_k``); the per-sample row marginal stays ``1/B`` (every code row is a distribution).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pretrain import distributed


@torch.no_grad()
def sinkhorn_codes(scores: torch.Tensor, eps: float = 0.05, n_iters: int = 3,
                   prior: torch.Tensor | None = None) -> torch.Tensor:
    """``distributed_sinkhorn``: codes for this rank's ``(B_local, K)`` prototype scores; rows sum to 1.

    The total and the per-prototype sums are all-reduced over ranks, so N ranks produce exactly
    the rows of the single-process codes of the concatenated batch. Runs in at least fp32
    (AMP-safe; float64 stays float64); the all-reduced maximum is subtracted before ``exp``
    (cancelled exactly by the first normalisation), so no overflow whatever ``scores / eps`` is.
    ``prior`` (``K`` masses summing to 1; ``None``: uniform, the original) is the prototype marginal.
    """
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    peak = scores.max().clone()
    if distributed.world_size() > 1:
        torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
    q = torch.exp((scores - peak) / eps).T  # K x B, as the paper's notation
    n_samples, n_prototypes = q.shape[1] * distributed.world_size(), q.shape[0]
    q /= distributed.all_reduce_sum(q.sum())
    if prior is not None:
        prior = prior.to(q).unsqueeze(1)
    for _ in range(n_iters):
        q /= distributed.all_reduce_sum(q.sum(dim=1, keepdim=True))  # each prototype: total 1/K (or prior[k])
        if prior is None:
            q /= n_prototypes
        else:
            q *= prior
        q /= q.sum(dim=0, keepdim=True)  # each sample: total 1/B
        q /= n_samples
    return (q * n_samples).T


def swapped_prediction_loss(scores: Sequence[torch.Tensor], codes: Sequence[torch.Tensor],
                            crops_for_assign: Sequence[int], temperature: float = 0.1) -> torch.Tensor:
    """Eq. 2 over crops: ``mean_{c in assign} mean_{v != c} -mean_i sum_k q_c log softmax(s_v / T)``.

    ``scores[v]``: prototype scores of crop ``v`` (B x K); ``codes[i]``: the codes of crop
    ``crops_for_assign[i]`` (B x K, no gradient).
    """
    loss = 0.0
    for q, crop in zip(codes, crops_for_assign, strict=True):
        subloss = 0.0
        for v in range(len(scores)):
            if v != crop:
                subloss = subloss - torch.mean(torch.sum(q * F.log_softmax(scores[v] / temperature, dim=1), dim=1))
        loss = loss + subloss / (len(scores) - 1)
    return loss / len(crops_for_assign)
