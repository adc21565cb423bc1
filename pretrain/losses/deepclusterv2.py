"""DeepCluster-v2 (Caron et al., NeurIPS 2020, Appendix A) as pure functions.

Reference: facebookresearch/swav ``main_deepclusterv2.py``. Before each epoch,
``cluster_memory`` runs spherical k-means (10 iterations, centroids initialised from random
memory-bank rows, re-normalised after each M step, empty clusters keep their centroid) on
the previous epoch's embeddings, one clustering per prototype head (3 x 3000 on ImageNet),
cycling through the crops' memory banks; the centroids become the prototypes and the
assignments the targets. ``train``: cross-entropy of every crop's prototype scores at
temperature 0.1 against its sample's assignment (``ignore_index=-100`` for samples not yet
in the memory), averaged over heads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pretrain import distributed


@torch.no_grad()
def spherical_kmeans(embeddings: torch.Tensor, init_centroids: torch.Tensor, n_iters: int = 10
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``cluster_memory``'s k-means on this rank's memory (rows L2-normalised): ``(centroids, assignments)``.

    The per-cluster sums and counts are all-reduced over ranks, so the centroids are those of
    the union of all ranks' memories; the assignments are this rank's rows'.
    """
    centroids = init_centroids.clone()
    k = centroids.shape[0]
    for n_iter in range(n_iters + 1):
        assignments = (embeddings @ centroids.T).argmax(dim=1)  # E step
        if n_iter == n_iters:
            break
        counts = torch.bincount(assignments, minlength=k).to(embeddings.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assignments, embeddings)  # M step
        distributed.all_reduce_sum(counts)
        distributed.all_reduce_sum(sums)
        mask = counts > 0
        centroids[mask] = sums[mask] / counts[mask].unsqueeze(1)
        centroids = F.normalize(centroids, dim=1)
    return centroids, assignments


def deepclusterv2_loss(scores: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], n_crops: int,
                       temperature: float = 0.1) -> torch.Tensor:
    """``mean_h CE(scores[h] / T, targets[h] repeated per crop)``, ignoring targets of -100.

    ``scores[h]``: head h's prototype scores of all crops stacked crop-major (n_crops*B x K_h);
    ``targets[h]``: the batch's assignments under head h (B,).
    """
    loss = 0.0
    for head_scores, head_targets in zip(scores, targets, strict=True):
        loss = loss + F.cross_entropy(head_scores / temperature, head_targets.repeat(n_crops), ignore_index=-100)
    return loss / len(scores)
