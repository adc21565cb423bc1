"""The authors' Sinkhorn-Knopp loop, transcribed once: the outside truth of the SwAV and MSN loss tests.

facebookresearch/swav ``main_swav.py::distributed_sinkhorn`` and facebookresearch/msn
``src/losses.py::distributed_sinkhorn`` (commit 4388dc1; the MSN authors kept SwAV's loop) run the
same iterations on a (K prototypes, B samples) matrix: scale it to total mass 1, then
``num_itr`` times each row to 1/K and each column to 1/B, finally each column to 1. They differ
only in the matrix they start from: SwAV ``exp(out / epsilon).t()`` of the scores, MSN the
transposed sharpened probabilities. Used by ``test_pretrain_losses_clustering.py`` (SwAV) and
``test_msn_loss.py`` (MSN); it is a transcription of the authors' code, independent of
``pretrain.losses``, so the tests never take the project's own code as the reference.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def ref_sinkhorn(Q: torch.Tensor, num_itr: int, world_size: int = 1) -> torch.Tensor:
    """The authors' loop on ``Q`` (K, B), in place as theirs, one process (their ``all_reduce`` of the
    sums is the identity; ``B`` counts ``world_size`` ranks' samples as theirs does); returns ``Q``."""
    B = Q.shape[1] * world_size  # number of samples to assign
    K = Q.shape[0]  # how many prototypes
    sum_Q = torch.sum(Q)
    Q /= sum_Q
    for _ in range(num_itr):
        sum_of_rows = torch.sum(Q, dim=1, keepdim=True)  # each prototype: total weight 1/K
        Q /= sum_of_rows
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)  # each sample: total weight 1/B
        Q /= B
    Q *= B  # the columns sum to 1: Q is an assignment
    return Q
