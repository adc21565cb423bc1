"""MoCo's InfoNCE losses: v2+ against a queue of past keys, v3 against the global batch's keys.

* :func:`moco_queue_infonce` (MoCo v2, He et al. 2020 Eq. 1; solo-learn
  ``solo/losses/mocov2plus.py::mocov2plus_loss_func``): logits ``[q·k+, q·queue] / τ`` with the
  positive at column 0, cross-entropy; ``q`` and ``k`` already L2-normalised.
* :func:`moco_v3_infonce` (MoCo v3, Chen et al. 2021 Algorithm 1; facebookresearch/moco-v3
  ``moco/builder.py::MoCo.contrastive_loss`` = solo-learn ``solo/losses/mocov3.py``): this rank's
  queries against the keys of every rank (gathered without gradient), label ``i + B_local x rank``,
  cross-entropy scaled by ``2τ``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pretrain import distributed


def moco_queue_infonce(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor,
                       temperature: float) -> torch.Tensor:
    """``query``/``key``: ``(B, D)`` normalised; ``queue``: ``(D, K)`` normalised negatives."""
    pos = torch.einsum("nc,nc->n", query, key).unsqueeze(-1)
    neg = torch.einsum("nc,ck->nk", query, queue)
    logits = torch.cat([pos, neg], dim=1) / temperature
    targets = torch.zeros(query.shape[0], device=query.device, dtype=torch.long)
    return F.cross_entropy(logits, targets)


def moco_v3_infonce(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """``query``: this rank's predictions; ``key``: this rank's momentum projections (no gradient)."""
    n = query.shape[0]
    query = F.normalize(query, dim=1)
    key = distributed.gather(F.normalize(key, dim=1), with_grad=False)
    logits = query @ key.T / temperature
    labels = torch.arange(n, dtype=torch.long, device=query.device) + n * distributed.rank()
    return F.cross_entropy(logits, labels) * (2 * temperature)
