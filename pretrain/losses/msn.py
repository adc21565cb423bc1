"""MSN (Assran et al., ECCV 2022) and PMSN (Assran et al., ICLR 2023, Eq. 9) as pure functions.

Transcribes facebookresearch/msn ``src/losses.py::init_msn_loss`` (commit 4388dc1) with the
prototype labels one-hot (``label_smoothing`` 0 in ``configs/pretrain/msn_vits16.yaml``, so
``snn(...) @ proto_labels`` is the soft-nearest-neighbour softmax itself):

* predictions ``p = softmax(z_n · q_n / tau)`` of L2-normalised representations ``z`` against
  L2-normalised prototypes ``q`` (``snn``), tau = 0.1;
* targets: the target view's prediction sharpened, ``p+ ∝ p^(1/T)`` with T = 0.25 (``sharpen``;
  an effective target temperature tau·T = 0.025), then optionally Sinkhorn-balanced
  (``distributed_sinkhorn``, 3 iterations), without gradient, repeated for every anchor view;
* ``1/N sum_i H(p+_i, p_i)`` (Step 3) plus ``lambda`` times the regulariser on the mean
  prediction ``pbar`` of the anchors over the global batch (Step 4's ``AllReduce`` of the mean).

The regulariser is ``D_KL(pbar || prior)`` (PMSN Eq. 9); for the uniform prior it equals the
reference's me-max term ``sum pbar log pbar + log K`` (PMSN footnote 2: the negative entropy of
MSN Eq. 6 is the KL to the uniform distribution plus a constant). The Sinkhorn targets balance
the prototypes to the same prior (rows of ``Q`` summing to ``prior_k`` instead of ``1/K``): the
PMSN paper does not mention Sinkhorn; a uniform Sinkhorn marginal would push the targets to
equal-size clusters whatever prior Eq. 9 asks for, so the prior is used in both places (our
choice; with the uniform prior it is the reference's ``distributed_sinkhorn`` exactly).

Batch coupling under DDP: ``pbar`` is the mean over the gathered global batch (gather with
gradient), and the Sinkhorn sums are all-reduced as the reference's ``distributed_sinkhorn``,
so N ranks compute the single-process values of the same global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pretrain import distributed

TEMPERATURE = 0.1  # PMSN App. D.1 / E.1.2 "the temperature is set to 0.1"; msn_vits16.yaml criterion.temperature
SHARPEN = 0.25  # PMSN App. D.1 / E.1.2 "the sharpening exponent is set to 0.25"; msn_vits16.yaml start/final_sharpen
SINKHORN_ITERS = 3  # src/losses.py::distributed_sinkhorn num_itr=3


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """MSN's "convert representations to fp32" (msn_train.py Step 1); float64 stays float64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def prototype_logits(z: torch.Tensor, prototypes: torch.Tensor, tau: float = TEMPERATURE) -> torch.Tensor:
    """``normalize(z) @ normalize(prototypes).T / tau`` (B x K): ``snn``'s softmax argument."""
    return F.normalize(z, dim=1) @ F.normalize(prototypes, dim=1).T / tau


def sharpen(p: torch.Tensor, T: float = SHARPEN) -> torch.Tensor:
    """``p^(1/T)`` normalised per row (src/losses.py::sharpen)."""
    sharp = p.pow(1.0 / T)
    return sharp / sharp.sum(dim=1, keepdim=True)


@torch.no_grad()
def sinkhorn_to_prior(probs: torch.Tensor, prior: torch.Tensor, n_iters: int = SINKHORN_ITERS) -> torch.Tensor:
    """src/losses.py::distributed_sinkhorn with prototype marginal ``prior`` (uniform: the reference).

    ``probs``: this rank's (B_local x K) targets. The total and each prototype's mass are summed
    over ranks; each sample's row is normalised locally. Returns rows summing to 1.
    """
    Q = probs.T.clone()  # K x B_local
    B = Q.shape[1] * distributed.world_size()
    Q /= distributed.all_reduce_sum(Q.sum())
    prior = prior.to(Q.dtype)[:, None]
    for _ in range(n_iters):
        Q /= distributed.all_reduce_sum(Q.sum(dim=1, keepdim=True))
        Q *= prior  # reference: Q /= K (each prototype's total weight 1/K)
        Q /= Q.sum(dim=0, keepdim=True)
        Q /= B
    return (Q * B).T


def global_mean_prediction(probs: torch.Tensor) -> torch.Tensor:
    """``pbar``: the mean prediction over the global batch (gathered with gradient), (K,)."""
    return distributed.gather(probs).mean(dim=0)


def kl_to_prior(mean: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """``D_KL(pbar || prior) = sum_k pbar_k log(pbar_k / prior_k)`` (PMSN Eq. 9's regulariser)."""
    prior = prior.to(mean.dtype)
    return (torch.special.xlogy(mean, mean) - mean * prior.log()).sum()


@torch.no_grad()
def msn_targets(target_z: torch.Tensor, prototypes: torch.Tensor, prior: torch.Tensor, tau: float = TEMPERATURE,
                T: float = SHARPEN, use_sinkhorn: bool = True, sinkhorn_iters: int = SINKHORN_ITERS) -> torch.Tensor:
    """Step 2 of the reference loss: sharpened (and optionally Sinkhorn-balanced) target predictions."""
    targets = sharpen(F.softmax(prototype_logits(_at_least_float32(target_z), _at_least_float32(prototypes), tau),
                                dim=1), T)
    if use_sinkhorn:
        targets = sinkhorn_to_prior(targets, prior, sinkhorn_iters)
    return targets


def msn_loss(anchor_z: torch.Tensor, target_z: torch.Tensor, prototypes: torch.Tensor, prior: torch.Tensor,
             tau: float = TEMPERATURE, T: float = SHARPEN, prior_weight: float = 1.0, use_sinkhorn: bool = True,
             sinkhorn_iters: int = SINKHORN_ITERS) -> tuple[torch.Tensor, dict]:
    """PMSN Eq. 9 (MSN for the uniform ``prior``): ``1/N sum H(p+_i, p_i) + lambda D_KL(pbar || prior)``.

    ``anchor_z``: the anchor views' representations stacked view after view (V*B x d, this
    rank's B samples in each), ``target_z``: the target view's (B x d, no gradient flows),
    ``prototypes``: (K x d), ``prior``: (K,) probabilities. Returns this rank's loss (its cross-entropy
    rows, the global-batch regulariser) and float logs ``msn_ce`` (local) and ``prior_kl``.
    """
    anchor_z, prototypes = _at_least_float32(anchor_z), _at_least_float32(prototypes)
    with torch.autocast(anchor_z.device.type, enabled=False):  # fp32 under AMP: the matmuls too
        targets = msn_targets(target_z.detach(), prototypes.detach(), prior, tau, T, use_sinkhorn, sinkhorn_iters)
        views = anchor_z.shape[0] // targets.shape[0]
        targets = targets.to(anchor_z.dtype).repeat(views, 1)  # torch.cat([targets] * num_views)
        log_probs = F.log_softmax(prototype_logits(anchor_z, prototypes, tau), dim=1)
        cross_entropy = -(targets * log_probs).sum(dim=1).mean()
        kl = kl_to_prior(global_mean_prediction(log_probs.exp()), prior)
    loss = cross_entropy + prior_weight * kl
    return loss, {"msn_ce": cross_entropy.item(), "prior_kl": kl.item()}
