"""Cluster priors: the target marginal over K prototypes/clusters (PMSN, Assran et al., ICLR 2023).

PMSN Sec. 5.2 ("Results with general power-law distributions"): ``[p_PL(tau)]_k ∝ 1 / k^tau``
for k = 1..K, with exponent ``tau > 0`` (0.25 in its Table 3); ``tau = 0`` is the uniform prior
``1/K`` of MSN, SwAV and ReSA (Sec. 3). Prototype indices are arbitrary, so the order (the most
probable cluster first) carries no meaning beyond naming which prototype gets which mass.
"""

from __future__ import annotations

import torch


def power_law_prior(K: int, tau: float) -> torch.Tensor:
    """The power-law probability vector ``p_k = k^-tau / sum_j j^-tau`` (K,), float64; uniform for tau = 0."""
    if K < 1:
        raise ValueError(f"K = {K}: a prior needs at least one cluster")
    if tau < 0:
        raise ValueError(f"tau = {tau}: the power-law exponent must be >= 0 (PMSN Eq. 9: tau > 0; 0 = uniform)")
    weights = torch.arange(1, K + 1, dtype=torch.float64).pow(-tau)
    return weights / weights.sum()
