"""Cluster-size priors for the assignment-based losses (ReSA, SwAV, MIRA): uniform or power-law.

PMSN (Assran et al., ICLR 2023, "The Hidden Uniform Cluster Prior in Self-Supervised Learning")
shows that the balanced-partition constraint of these methods is a *uniform* prior on cluster
sizes, which hurts on long-tailed data, and replaces it by a power law: Section 5, Eq. 9
(``D_KL(pbar || p_PL(tau))``) with "``[p_PL(tau)]_k`` proportional to ``1/k^tau``" (the text
before Table 3), ``tau = 0.25`` in Table 3; Appendix E gives the pretraining protocol of those
runs (ViT-S/16, 8142 prototypes). :func:`power_law_prior` is that definition, normalised to
sum 1 over ``k = 1..K``.

``loss.prior`` (``uniform`` | ``power_law``) and ``loss.prior_tau`` select it per run for the
methods that declare :data:`PRIOR_DEFAULTS`. ``uniform`` passes ``None`` to the losses, which
then run their original arithmetic unchanged (bit for bit); each loss's docstring says which
marginal the prior replaces.
"""

from __future__ import annotations

import torch

from resa_core.errors import UserError

PRIORS = ("uniform", "power_law")
PMSN_TAU = 0.25  # PMSN Table 3: "power-law exponent tau = 0.25"
PRIOR_DEFAULTS = {"prior": "uniform", "prior_tau": PMSN_TAU}  # uniform: each method's paper setting


def uniform(K: int) -> torch.Tensor:
    """``1/K`` for each of ``K`` clusters (float64): the implicit prior of SwAV, MSN, ReSA, MIRA."""
    return torch.full((K,), 1.0 / K, dtype=torch.float64)


def power_law_prior(K: int, tau: float) -> torch.Tensor:
    """PMSN's ``p_PL(tau)``: ``[p]_k = k^-tau / sum_{l=1..K} l^-tau`` for ``k = 1..K`` (float64, decreasing).

    ``tau = 0`` is the uniform prior. PMSN Section 5 (text before Table 3) and Eq. 9.
    """
    if K < 1 or tau < 0:
        raise ValueError(f"power_law_prior needs K >= 1 and tau >= 0, got K={K}, tau={tau}")
    weights = torch.arange(1, K + 1, dtype=torch.float64).pow(-tau)
    return weights / weights.sum()


def check_prior_config(loss_cfg: dict, source: str) -> None:
    """One-line error for an unknown ``loss.prior`` or a negative ``loss.prior_tau``."""
    if loss_cfg["prior"] not in PRIORS:
        raise UserError(f"{source}: loss.prior = {loss_cfg['prior']!r}; expected one of {PRIORS}")
    if not isinstance(loss_cfg["prior_tau"], (int, float)) or loss_cfg["prior_tau"] < 0:
        raise UserError(f"{source}: loss.prior_tau = {loss_cfg['prior_tau']!r} must be a number >= 0")


def prior_from_config(loss_cfg: dict, K: int) -> torch.Tensor | None:
    """The configured prior over ``K`` clusters; ``None`` for ``uniform`` (the losses' original code path)."""
    if loss_cfg.get("prior", "uniform") == "uniform":
        return None
    return power_law_prior(K, float(loss_cfg["prior_tau"]))


def rank_ordered(prior: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """``prior``'s values placed on ``mass``'s entries by rank: the largest mass gets the largest value.

    For clusters without a fixed identity (ReSA's batch samples): the power law then follows the
    data, not the batch order, so permuting the batch permutes the marginal with it. Ties go to
    the lower index (stable sort).
    """
    order = torch.sort(mass, descending=True, stable=True).indices
    placed = torch.empty_like(mass)
    placed[order] = torch.sort(prior.to(mass), descending=True).values
    return placed
