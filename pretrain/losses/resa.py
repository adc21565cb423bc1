"""The ReSA loss and its Sinkhorn-Knopp assignment as pure functions.

Source: Weng et al., "Clustering Properties of Self-Supervised Learning" (ICML 2025),
Section 4.1 Eq. 2 and the PyTorch-style pseudo-code of Appendix B.2. Two notes on fidelity:

* Algorithm 1's column step normalises by ``c/u``; the B.2 code (and the authors' released
  ``methods/base.py``) uses the fresh column sums ``c / Q.sum(dim=0)``. We transcribe B.2.
* B.2's ``cross_entropy`` takes ``mean`` over all m x m entries, which is Eq. 2 divided by m.
  We use Eq. 2's per-sample scale (sum over j, mean over i), as the authors' released code
  does (``torch.sum(q * log_softmax(s), dim=-1).mean()``).

Non-uniform prior (``prior``, :mod:`pretrain.losses.priors`; an extension, no paper does it for
ReSA): the assignment ``A`` (rows: samples, each summing to 1) has its *column* marginal set to
uniform by the Sinkhorn, every target sample receiving the same total mass, as SwAV's prototypes
(the authors' ``sinkhorn_knopp`` treats the gathered targets as prototypes). That column
marginal is the cluster-size prior PMSN describes, and it is the one ``prior`` replaces; the row
marginal stays uniform (each row is a distribution). Batch positions have no identity, so a
power law indexed by position would be arbitrary: the prior's masses are placed by rank of each
target's affinity mass ``sum_i exp(S_ij / eps)`` (:func:`pretrain.losses.priors.rank_ordered`),
the target in the densest neighbourhood (a head-class sample on long-tailed data) receiving the
largest share. The motivation is ReSA Appendix C.3 / Figure 12: on CIFAR-100-LT (imbalance 1/20)
ReSA under the uniform marginal learns more slowly early on, which the paper attributes to
"noisy initial clusters"; a batch from long-tailed data does not admit a balanced partition.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pretrain.losses.priors import rank_ordered
from pretrain.precision import at_least_float32


def cosine_similarity_matrix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``norm(x) @ norm(y).T`` (B.2 ``cos_sim``)."""
    return F.normalize(x, dim=1) @ F.normalize(y, dim=1).T


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, eps: float = 0.05, n_iters: int = 3,
             prior: torch.Tensor | None = None) -> torch.Tensor:
    """Doubly-stochastic assignment from a square score matrix (B.2 ``sinkhorn``), rows sum to 1.

    Runs in at least fp32 whatever the input dtype (AMP-safe); the max is subtracted before ``exp``,
    which the normalisations cancel exactly, so large ``scores/eps`` cannot overflow. ``prior``
    (``m`` masses summing to 1; ``None``: uniform, B.2 exactly) is the target column marginal,
    placed by rank of the targets' affinity mass (module docstring): ``A.sum(0) / m`` approaches it.
    """
    scores = at_least_float32(scores)
    q = torch.exp((scores - scores.max()) / eps).T
    q /= q.sum()
    m = q.shape[0]
    c = torch.full((m,), 1.0 / m, dtype=q.dtype, device=q.device)
    targets = c if prior is None else rank_ordered(prior, q.sum(dim=1))
    for _ in range(n_iters):
        q *= (targets / q.sum(dim=1)).unsqueeze(1)
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
def sinkhorn_distributed(scores: torch.Tensor, eps: float = 0.05, n_iters: int = 3,
                         prior: torch.Tensor | None = None) -> torch.Tensor:
    """Sinkhorn over a rank-sharded ``(B_local, B_global)`` score matrix; rows sum to 1.

    The authors' released ``sinkhorn_knopp`` (winci-ai/resa ``method/base.py``, SwAV's
    distributed version): the global-batch columns play SwAV's prototypes; the total and the
    per-column sums over samples are all-reduced across ranks, the per-sample normalisation is
    local. Runs in at least fp32; the all-reduced max is subtracted before ``exp`` (cancelled exactly by
    the normalisations). With one rank and a square matrix it equals :func:`sinkhorn`. ``prior``
    (``B_global`` masses; ``None``: uniform, the released code) replaces the targets' ``1/B_global``,
    ranked by their all-reduced affinity mass, so every rank places it identically.
    """
    from pretrain.distributed import all_reduce_sum, world_size

    scores = at_least_float32(scores)
    peak = scores.max().clone()
    if world_size() > 1:
        torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
    q = torch.exp((scores - peak) / eps).T  # (B_global "prototypes", B_local samples)
    n_targets, n_samples = q.shape[0], q.shape[1] * world_size()
    q /= all_reduce_sum(q.sum())
    if prior is not None:
        prior = rank_ordered(prior, all_reduce_sum(q.sum(dim=1))).unsqueeze(1)
    for _ in range(n_iters):
        q /= all_reduce_sum(q.sum(dim=1, keepdim=True))
        if prior is None:
            q /= n_targets
        else:
            q *= prior
        q /= q.sum(dim=0, keepdim=True)
        q /= n_samples
    return (q * n_samples).T


def row_cross_entropy(logits: torch.Tensor, assign: torch.Tensor) -> torch.Tensor:
    """The released code's ``cross_entropy``: ``-mean_i sum_j A_ij log softmax(S)_ij`` (rows only)."""
    return -torch.sum(assign * F.log_softmax(logits, dim=1), dim=1).mean()
