"""The ReSA loss and its Sinkhorn-Knopp assignment as pure functions.

Source: Weng et al., "Clustering Properties of Self-Supervised Learning" (ICML 2025),
Section 4.1 Eq. 2 and the PyTorch-style pseudo-code of Appendix B.2. Two notes on fidelity:

* Algorithm 1's column step normalises by ``c/u``; the B.2 code (and the authors' released
  ``methods/base.py``) uses the fresh column sums ``c / Q.sum(dim=0)``. We transcribe B.2.
* B.2's ``cross_entropy`` takes ``mean`` over all m x m entries, which is Eq. 2 divided by m.
  We use Eq. 2's per-sample scale (sum over j, mean over i), as the authors' released code
  does (``torch.sum(q * log_softmax(s), dim=-1).mean()``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_similarity_matrix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``norm(x) @ norm(y).T`` (B.2 ``cos_sim``)."""
    return F.normalize(x, dim=1) @ F.normalize(y, dim=1).T


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, eps: float = 0.05, n_iters: int = 3) -> torch.Tensor:
    """Doubly-stochastic assignment from a square score matrix (B.2 ``sinkhorn``), rows sum to 1.

    Runs in fp32 whatever the input dtype (AMP-safe); the max is subtracted before ``exp``,
    which the normalisations cancel exactly, so large ``scores/eps`` cannot overflow.
    """
    scores = scores.float()
    q = torch.exp((scores - scores.max()) / eps).T
    q /= q.sum()
    m = q.shape[0]
    c = torch.full((m,), 1.0 / m, dtype=q.dtype, device=q.device)
    for _ in range(n_iters):
        q *= (c / q.sum(dim=1)).unsqueeze(1)
        q *= (c / q.sum(dim=0)).unsqueeze(0)
    return (q / q.sum(dim=0, keepdim=True)).T


def symmetric_cross_entropy(logits: torch.Tensor, assign: torch.Tensor) -> torch.Tensor:
    """One term of Eq. 2: -(1/2m) sum_ij [A o log D(S) + A^T o log D(S^T)], D the row softmax."""
    row_term = torch.sum(assign * F.log_softmax(logits, dim=1), dim=1).mean()
    col_term = torch.sum(assign.T * F.log_softmax(logits.T, dim=1), dim=1).mean()
    return -(row_term + col_term) / 2


def resa_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    z1_target: torch.Tensor,
    z2_target: torch.Tensor,
    assign: torch.Tensor,
    temperature: float = 0.4,
) -> torch.Tensor:
    """B.2: ½[CE(cos(z1, z2m)/τ, A) + CE(cos(z2, z1m)/τ, A)] at Eq. 2's scale.

    With a momentum encoder the targets are the momentum embeddings ``(z1m, z2m)``. Without one
    (Table 11 ablation) pass ``z1_target=z1, z2_target=z2``: both terms are then Eq. 2 on
    ``(z1, z2)`` (the second is the first transposed), so the result is exactly Eq. 2.
    """
    loss_12 = symmetric_cross_entropy(cosine_similarity_matrix(z1, z2_target) / temperature, assign)
    loss_21 = symmetric_cross_entropy(cosine_similarity_matrix(z2, z1_target) / temperature, assign)
    return (loss_12 + loss_21) / 2


@torch.no_grad()
def sinkhorn_distributed(scores: torch.Tensor, eps: float = 0.05, n_iters: int = 3) -> torch.Tensor:
    """Sinkhorn over a rank-sharded ``(B_local, B_global)`` score matrix; rows sum to 1.

    The authors' released ``sinkhorn_knopp`` (winci-ai/resa ``method/base.py``, SwAV's
    distributed version): the global-batch columns play SwAV's prototypes; the total and the
    per-column sums over samples are all-reduced across ranks, the per-sample normalisation is
    local. Runs in fp32; the all-reduced max is subtracted before ``exp`` (cancelled exactly by
    the normalisations). With one rank and a square matrix it equals :func:`sinkhorn`.
    """
    from pretrain.distributed import all_reduce_sum, world_size

    scores = scores.float()
    peak = scores.max().clone()
    if world_size() > 1:
        torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
    q = torch.exp((scores - peak) / eps).T  # (B_global "prototypes", B_local samples)
    n_targets, n_samples = q.shape[0], q.shape[1] * world_size()
    q /= all_reduce_sum(q.sum())
    for _ in range(n_iters):
        q /= all_reduce_sum(q.sum(dim=1, keepdim=True))
        q /= n_targets
        q /= q.sum(dim=0, keepdim=True)
        q /= n_samples
    return (q * n_samples).T


def row_cross_entropy(logits: torch.Tensor, assign: torch.Tensor) -> torch.Tensor:
    """The released code's ``cross_entropy``: ``-mean_i sum_j A_ij log softmax(S)_ij`` (rows only)."""
    return -torch.sum(assign * F.log_softmax(logits, dim=1), dim=1).mean()
