"""MIRA (Lee et al., NeurIPS 2022, Eqs. 4-8) as pure functions: fixed-point pseudo-labels, swapped prediction.

Pseudo-labels (Sec. 3.1-3.2): for teacher probabilities ``p_i = softmax(f(x_i) / tau_t)`` the
assignment ``W*`` minimises Eq. 4, ``-1/B sum w log p + (1-beta)/B sum w log w + beta sum_j
wbar_j log wbar_j`` (KL to the model minus beta times the mutual information); its unique
optimum satisfies Eq. 5, ``w_ij ~ wbar_j^(-beta/(1-beta)) p_ij^(1/(1-beta))``, and the marginal
``wbar`` is the fixed point of Eq. 7, ``u_j <- [1/B sum_i p_ij^(1/(1-beta)) / sum_k
u_k^(-beta/(1-beta)) p_ik^(1/(1-beta))]^(1-beta)``. Transcribes the authors' movinghoon/mira
``train.py::mira`` (commit 2a62538): ``p^(1/(1-beta))`` taken as ``softmax(f / tau_t / (1-beta))``
(a per-row scale, which cancels in Eqs. 5 and 7), ``u`` initialised by one update of Eq. 7 from
``u = 1``, then ``n_iters`` updates (``--iters`` 30, Sec. 4.1), then Eq. 5. The batch mean over
samples (``wbar``, the only batch-coupled statistic) is all-reduced over ranks as the original's
``dist.all_reduce(temp)``, so N ranks give the rows of the single-process global batch.

Loss (Eq. 8): the pseudo-labels of each of the two large crops are predicted from every other
crop's student logits at ``tau_s``; as the original's ``loss_func`` (mean over the predicting
crops, then the two targets averaged), which is Eq. 8 divided by 2 for two crops, and equal to
SwAV's swapped-prediction average (:func:`pretrain.losses.swav.swapped_prediction_loss`).
Defaults: ``tau_s`` 0.1, ``tau_t`` 0.225, ``beta`` 2/3, 30 iterations (Sec. 4.1, "Training details").

Non-uniform prior (``prior`` pi, :mod:`pretrain.losses.priors`; an extension after PMSN Eq. 9,
which swaps MSN's mean entropy for a KL to a prior): Eq. 4's marginal term ``beta sum_j wbar_j
log wbar_j`` (minus beta times the marginal entropy, i.e. a KL to the uniform prior up to a
constant) becomes ``beta KL(wbar || pi)``. The stationarity condition of Eq. 4 then gives Eq. 5
with ``wbar_j`` replaced by ``wbar_j / pi_j``: ``w_ij ~ (wbar_j / pi_j)^(-beta/(1-beta))
p_ij^(1/(1-beta))``, and the fixed point of Eq. 7 becomes ``u_j / pi_j = [1/(B pi_j) sum_i
p_ij^(1/(1-beta)) / sum_k (u_k/pi_k)^(-beta/(1-beta)) p_ik^(1/(1-beta))]^(1-beta)`` (derivation in
docs/priors.md). ``prior=None`` is ``pi = 1`` in these formulas: dividing by 1.0 is exact, so the
original arithmetic is reproduced bit for bit (a constant ``pi = 1/K`` cancels in Eq. 5 as well).
Prototypes are indexed as PMSN's ``[p_PL]_k`` (learnable, so their order is a free labelling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pretrain import distributed
from pretrain.losses.swav import swapped_prediction_loss

TAU_S = 0.1  # Sec. 4.1: tau_s = 0.1
TAU_T = 0.225  # Sec. 4.1: tau_t = 0.225
BETA = 2.0 / 3.0  # Sec. 4.1: trade-off coefficient beta = 2/3
FIXED_POINT_ITERS = 30  # Sec. 4.1: "30 steps of the fixed point iteration"
CROPS_FOR_ASSIGN = (0, 1)  # Sec. 3.3 / train.py::loss_func: targets from the two large crops


def _global_sample_mean(rows: torch.Tensor) -> torch.Tensor:
    """``1/B sum_i rows_i`` over the global batch (column sums all-reduced over ranks)."""
    total = distributed.all_reduce_sum(rows.sum(dim=0))
    return total / (rows.shape[0] * distributed.world_size())


@torch.no_grad()
def mira_marginal(powered: torch.Tensor, beta: float, n_iters: int,
                  prior: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Eq. 7 on ``powered = p^(1/(1-beta))`` (rows up to scale): the optimal marginal ``wbar*`` (K,).

    Iterates ``ratio = wbar / prior`` (``prior`` 1.0: Eq. 7 itself, the module docstring's KL form otherwise).
    """
    ratio = (_global_sample_mean(powered) / prior).pow(1 - beta)  # Eq. 7 once from u = 1 (train.py::mira's init)
    for _ in range(n_iters):
        weighted = powered / (ratio.pow(-beta / (1 - beta)) * powered).sum(dim=1, keepdim=True)
        ratio = (_global_sample_mean(weighted) / prior).pow(1 - beta)
    return ratio * prior


@torch.no_grad()
def mira_pseudo_labels(logits: torch.Tensor, tau_t: float = TAU_T, beta: float = BETA,
                       n_iters: int = FIXED_POINT_ITERS, prior: torch.Tensor | None = None) -> torch.Tensor:
    """MIRA's assignment ``W*`` (B_local x K, rows sum to 1) for this rank's teacher ``logits``.

    Eq. 7 for the marginal, then Eq. 5. Runs in at least fp32 (AMP-safe; float64 stays float64).
    ``prior`` (K masses; ``None``: uniform, the paper) as the module docstring's KL form.
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta = {beta} must lie in [0, 1) (Proposition 1)")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    powered = F.softmax(logits / tau_t / (1 - beta), dim=1)  # p^(1/(1-beta)), each row rescaled
    prior = 1.0 if prior is None else prior.to(powered)
    marginal = mira_marginal(powered, beta, n_iters, prior)
    unnormalised = (marginal / prior).pow(-beta / (1 - beta)) * powered  # Eq. 5's numerator
    return unnormalised / unnormalised.sum(dim=1, keepdim=True)


def mira_loss(student_logits: Sequence[torch.Tensor], teacher_logits: Sequence[torch.Tensor],
              tau_s: float = TAU_S, tau_t: float = TAU_T, beta: float = BETA,
              n_iters: int = FIXED_POINT_ITERS, prior: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 8 (averaged over the two targets): pseudo-labels of ``teacher_logits[c]`` for the large crops
    ``c`` in (0, 1), each predicted from every other crop's ``student_logits`` at ``tau_s``.

    ``student_logits``: one (B x K) tensor per crop, large crops first; ``teacher_logits``: the
    two large crops' (B x K) logits (no gradient flows into the pseudo-labels).
    """
    targets = [mira_pseudo_labels(teacher_logits[c].detach(), tau_t, beta, n_iters, prior) for c in CROPS_FOR_ASSIGN]
    targets = [t.to(student_logits[0].dtype) for t in targets]
    return swapped_prediction_loss(student_logits, targets, CROPS_FOR_ASSIGN, tau_s)
