"""DSA (Dynamic Semantic Adjuster): the regulariser's equations as pure functions of batch tensors.

Section V of the DSA paper (``shared/papers/dsa-dynamic-semantic-adjuster.md``), on the 2N
features of the two views of a batch (rows ``[view 1; view 2]``):

* arranging module: the regulator ``M`` (Eq. 9) from the similarity network's pair scores
  ``f_s(cat(z_i, z_j))`` and the arranging loss ``L_AM`` (Eq. 10);
* scoring module: the prior regulator ``M^pre`` (Eq. 11-12) from the auxiliary features, the
  consistency loss ``L_con = ||M^pre - M||_F^2`` (Eq. 13), the k-nearest-neighbour connectivity
  score ``sc(z_i) = s_i / eta`` (Eq. 14-15) and the score-weighted ``L_AM^S`` (Eq. 16);
* Eq. 17: ``L = L_ssl + nu * L_AM^S + upsilon * L_con`` (:func:`dsa_regulariser` is the part after L_ssl).

Where the paper's text is ambiguous these are the choices (each also in its function):

1. Eq. 9 divides each score by its row sum; a ReLU MLP's linear output can be negative or sum
   to zero, so the row normalisation is a softmax of the scores (the exponential normalisation the
   paper itself uses for ``M^pre`` in Eq. 11-12, so both sides of Eq. 13 are row distributions).
2. Eq. 10/16: the exponent is ``(2 M_ij - alpha) ||z_i - z_j||^2 / tau`` (the text below Eq. 10:
   ``2 M_ij - alpha > 0`` pulls the pair together); both sums run over all 2N x 2N pairs, i = j
   included, as the equations write them; computed as a log-sum-exp with the leading 1 as an
   ``exp(0)`` term (the same value, stable in float32).
3. Eq. 11: ``M^pre_ij = exp(-||z^_i - z^_j||^2 / tau)`` (closer in the prior space, larger), with
   the tau of Eq. 10 (the paper writes the same symbol), all k in the row sum (Eq. 12).
   Eq. 13 is the squared Frobenius norm (a sum, not a mean).
4. Eq. 14 (garbled in the text we have): ``s_i`` counts the mutual neighbours of ``z^_i``: the
   ``p`` among its ``eta`` nearest neighbours (Euclidean, itself excluded) that also have ``z^_i``
   among their ``eta`` nearest; so ``s_i <= eta`` and ``sc = s_i / eta`` in ``[0, 1]``, ~1 inside
   a class and ~0 for an outlier, as the text after Eq. 15 says. The score is a constant (no gradient).
"""

from __future__ import annotations

import torch


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """``||x_i - x_j||_2^2`` for all rows, from the Gram matrix (a (2N)^2 x D difference tensor would not
    fit at ImageNet batch sizes), clamped at 0 against rounding."""
    norms = x.pow(2).sum(1)
    return (norms[:, None] + norms[None, :] - 2 * x @ x.T).clamp_min(0)


def regulator(pair_scores: torch.Tensor) -> torch.Tensor:
    """Eq. 9: ``M_i = normalised [f_s(z_i1), ..., f_s(z_i,2N)]``; the normalisation is a row softmax (choice 1)."""
    return torch.softmax(pair_scores, dim=1)


def prior_regulator(aux: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 11-12: ``M^pre_ij = exp(-||z^_i - z^_j||^2 / tau) / sum_k exp(-||z^_i - z^_k||^2 / tau)``."""
    return torch.softmax(-squared_distances(aux) / temperature, dim=1)


@torch.no_grad()
def connectivity_score(aux: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 14-15: ``sc(z_i) = s_i / eta``, ``s_i`` = mutual ``eta``-nearest neighbours of ``z^_i`` (choice 4)."""
    n = aux.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"dsa: {k} nearest neighbours need more than {k} samples in the batch, got {n}")
    distances = squared_distances(aux)
    distances.fill_diagonal_(float("inf"))  # a point is not its own neighbour
    neighbours = torch.zeros(n, n, dtype=torch.bool, device=aux.device)
    neighbours.scatter_(1, distances.topk(k, dim=1, largest=False).indices, True)  # row i: N_eta(z^_i)
    mutual = neighbours & neighbours.T  # (i, p): p in N(i) and i in N(p)
    return mutual.sum(1).to(aux.dtype) / k


def arranging_loss(z: torch.Tensor, m: torch.Tensor, alpha: float, temperature: float,
                   score: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 10 (``score`` None) or Eq. 16: ``log(1 + sum_i sc_i sum_j exp((2 M_ij - alpha) ||z_i - z_j||^2 / tau))``."""
    exponents = (2 * m - alpha) * squared_distances(z) / temperature
    if score is not None:
        exponents = exponents + score.log()[:, None]  # sc_i = 0 gives exp(-inf) = 0: the anchor drops out
    terms = torch.cat([exponents.new_zeros(1), exponents.flatten()])  # the 1 of log(1 + ...) as exp(0)
    return torch.logsumexp(terms, dim=0)


def consistency_loss(m: torch.Tensor, m_prior: torch.Tensor) -> torch.Tensor:
    """Eq. 13: ``L_con = ||M^pre - M||_F^2``."""
    return (m_prior - m).pow(2).sum()


def dsa_regulariser(z: torch.Tensor, pair_scores: torch.Tensor, aux: torch.Tensor, *, alpha: float, nu: float,
                    upsilon: float, knn: int, temperature: float,
                    use_score: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The DSA terms of Eq. 17, ``nu * L_AM^S + upsilon * L_con``, and the parts (detached) to log.

    ``z``: the 2N features of the batch; ``pair_scores[i, j] = f_s(cat(z_i, z_j))``; ``aux``: the
    auxiliary extractor's features of the same 2N samples; ``temperature``: tau of Eq. 10, 11 and 16.
    ``use_score=False`` is Eq. 10 (the paper's "w/o sc" ablation, Table IX).
    """
    m = regulator(pair_scores)
    score = connectivity_score(aux, knn) if use_score else None
    am = arranging_loss(z, m, alpha, temperature, score)
    con = consistency_loss(m, prior_regulator(aux, temperature))
    return nu * am + upsilon * con, {"dsa_am": am.detach(), "dsa_con": con.detach()}
