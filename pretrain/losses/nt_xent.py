"""SimCLR's NT-Xent loss over the global batch (Chen et al. 2020, Eq. 1).

``l(i, j) = -log exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ)``, averaged over the 2N
anchors. Transcribes solo-learn ``solo/losses/simclr.py::simclr_loss_func``: each rank's rows
(its local ``2 x B_local`` embeddings) against the columns gathered from every rank *with*
gradient, positives found by sample identity, so with DDP's gradient averaging N ranks give the
single-process loss and gradient of the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pretrain import distributed


def nt_xent(z: torch.Tensor, indexes: torch.Tensor, temperature: float) -> torch.Tensor:
    """``z``: ``(V x B_local, D)`` embeddings of V views; ``indexes``: each row's sample id (unique per sample
    over the global batch). Mean over this rank's rows of ``-log(pos / (pos + neg))``."""
    z = F.normalize(z, dim=-1)
    gathered_z = distributed.gather(z)
    sim = torch.exp(z @ gathered_z.T / temperature)
    gathered_indexes = distributed.gather(indexes, with_grad=False)
    pos_mask = indexes.unsqueeze(1) == gathered_indexes.unsqueeze(0)
    offset = z.shape[0] * distributed.rank()
    self_mask = torch.zeros_like(pos_mask)
    self_mask[:, offset:offset + z.shape[0]] = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
    pos_mask = pos_mask & ~self_mask
    neg_mask = indexes.unsqueeze(1) != gathered_indexes.unsqueeze(0)
    pos = torch.sum(sim * pos_mask, 1)
    neg = torch.sum(sim * neg_mask, 1)
    return -torch.mean(torch.log(pos / (pos + neg)))
