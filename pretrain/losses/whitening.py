"""Whitening losses as pure functions: W-MSE, CW-RGP and INTL.

* W-MSE (Ermolov et al., ICML 2021, Eqs. 3-5): each view's embeddings of a sub-batch of
  ``w_size`` samples are whitened by the inverse Cholesky factor of their covariance
  (htdt/self-supervised ``methods/whitening.py`` ``Whitening2d`` with
  ``track_running_stats=False``), then every pair of views is compared with the normalised
  MSE (``methods/norm_mse.py``); ``w_iter`` random sub-batch partitions are averaged
  (``methods/w_mse.py`` ``WMSE.forward``).
* CW-RGP (Weng et al., NeurIPS 2022): channel whitening (``axis=0``: the ``N x N`` Gram of
  the centred samples across channels) with ZCA, the channels randomly split into ``group``
  groups (a fresh channel permutation per sub-batch and view); winci-ai/CW-RGP
  ``base/methods/whitening.py`` ``Whitening2dZCA`` and ``base/methods/cwrgp.py``.
* INTL (Weng et al., ICLR 2024): Newton's iterations of IterNorm (``iters`` = 4) on the
  trace-normalised covariance, then normalised MSE to the first view plus ``trade_off`` x the
  trace loss of each view; winci-ai/INTL ``methods/whitening.py`` ``Whitening2dIterNorm`` and
  ``methods/intl.py``.

The random permutations are arguments (the methods draw them from a seeded generator shared
by all ranks), so the functions are deterministic and the same on every rank. Pass the
embeddings of the global batch (gathered with gradient under DDP): INTL's original gathers
inside its whitening the same way; W-MSE's and CW-RGP's originals are single-GPU.

Deliberate difference: ZCA uses ``torch.linalg.eigh`` of the symmetric covariance where the
original calls ``svd`` (the same decomposition for a symmetric PSD matrix, faster and with a
defined gradient path); the tests compare both to 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def norm_mse(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """``2 - 2 cos(x0, x1)`` averaged over samples (htdt ``norm_mse_loss``)."""
    return 2 - 2 * (F.normalize(x0, dim=1) * F.normalize(x1, dim=1)).sum(dim=-1).mean()


def cholesky_whiten(x: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """W-MSE Eq. 4: ``W (x - mean)`` with ``W = L^-1``, ``L L^T = (1 - eps) Cov + eps I``.

    Cov is the unbiased covariance of the rows of ``x`` (N x D). The reference computes
    ``conv2d(xn, W)``, i.e. ``xn @ W.T``.
    """
    xn = x - x.mean(dim=0, keepdim=True)
    cov = xn.T @ xn / (x.shape[0] - 1)
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    cov = (1 - eps) * cov + eps * eye
    inv_sqrt = torch.linalg.solve_triangular(torch.linalg.cholesky(cov), eye, upper=False)
    return xn @ inv_sqrt.T


def _subbatch_whitened(views: Sequence[torch.Tensor], perms: Sequence[torch.Tensor], w_size: int, whiten) -> list:
    """One tensor per (partition, view): each sub-batch of ``perm.view(-1, w_size)`` whitened."""
    batch = views[0].shape[0]
    if batch % w_size:
        raise ValueError(f"batch {batch} is not divisible by the whitening sub-batch size {w_size}")
    out = []
    for perm in perms:
        whitened = []
        for v, z in enumerate(views):
            parts = torch.empty_like(z)
            for chunk, idx in enumerate(perm.view(-1, w_size)):
                parts = parts.index_put((idx,), whiten(z[idx], v, chunk))
            whitened.append(parts)
        out.append(whitened)
    return out


def _pairwise(whitened_per_perm: list, loss_f) -> torch.Tensor:
    total, n_views = 0.0, len(whitened_per_perm[0])
    pairs = n_views * (n_views - 1) // 2
    for whitened in whitened_per_perm:
        for i in range(n_views - 1):
            for j in range(i + 1, n_views):
                total = total + loss_f(whitened[i], whitened[j])
    return total / (len(whitened_per_perm) * pairs)


def wmse_loss(views: Sequence[torch.Tensor], perms: Sequence[torch.Tensor], w_size: int, eps: float = 0.0,
              normalize: bool = True) -> torch.Tensor:
    """W-MSE Eq. 5 over all view pairs and ``len(perms)`` (= ``w_iter``) sub-batch partitions.

    ``perms``: permutations of ``range(batch)``; each is cut into sub-batches of ``w_size``.
    ``normalize``: the normalised MSE (default, htdt ``--norm``), else plain ``mse_loss``.
    """
    loss_f = norm_mse if normalize else F.mse_loss
    whitened = _subbatch_whitened(views, perms, w_size, lambda z, v, c: cholesky_whiten(z, eps))
    return _pairwise(whitened, loss_f)


def zca_matrix(sigma: torch.Tensor) -> torch.Tensor:
    """``U diag(eig^-1/2) U^T`` for a batch of symmetric PSD matrices (CW-RGP ``Whitening2dZCA``)."""
    eig, u = torch.linalg.eigh(sigma)
    return u @ torch.diag_embed(eig.rsqrt()) @ u.transpose(-1, -2)


def group_whiten(x: torch.Tensor, shuffle: torch.Tensor | None, group: int = 1, axis: int = 0, eps: float = 0.0,
                 minus: int = 1) -> torch.Tensor:
    """CW-RGP ``Whitening2d.forward`` (training mode, no running statistics) with ZCA.

    ``axis=0``: channel whitening (per-sample centring, the ``N x N`` Gram over each channel
    group); ``axis=1``: batch whitening (per-channel centring, ``D/g x D/g`` covariances).
    ``shuffle``: a channel permutation before grouping, undone afterwards (None: identity).
    """
    n, dim = x.shape
    if dim % group:
        raise ValueError(f"the whitened dimension {dim} is not divisible by group={group}")
    sigma_dim = dim // group
    xn = x - x.mean(dim=0 if axis == 1 else 1, keepdim=True)
    if shuffle is not None:
        shuffle = torch.as_tensor(shuffle, device=x.device)
        xn = xn[:, shuffle]
    grouped = xn.reshape(n, group, sigma_dim).permute(1, 0, 2) if axis == 1 else \
        xn.reshape(n, group, sigma_dim).permute(1, 2, 0)
    cov = grouped.transpose(1, 2) @ grouped / (grouped.shape[1] - minus)
    eye = torch.eye(cov.shape[-1], dtype=x.dtype, device=x.device)
    sigma = (1 - eps) * cov + eps * eye
    decorrelated = grouped @ zca_matrix(sigma)
    out = decorrelated.permute(1, 0, 2).reshape(n, dim) if axis == 1 else decorrelated.permute(2, 0, 1).reshape(n, dim)
    if shuffle is not None:
        out = out[:, torch.argsort(shuffle)]
    return out


def cwrgp_loss(views: Sequence[torch.Tensor], perms: Sequence[torch.Tensor], shuffles: Sequence[Sequence],
               w_size: int, group: int = 1, axis: int = 0, eps: float = 0.0, minus: int = 1,
               normalize: bool = True) -> torch.Tensor:
    """CW-RGP: W-MSE's structure with :func:`group_whiten` in place of Cholesky whitening.

    ``shuffles[p][chunk * len(views) + v]``: the channel permutation of view ``v`` in sub-batch
    ``chunk`` of partition ``p`` (or None), the order in which ``cwrgp.py`` draws them.
    """
    loss_f = norm_mse if normalize else F.mse_loss
    whitened = []
    for perm, perm_shuffles in zip(perms, shuffles, strict=True):
        whitened += _subbatch_whitened(
            views, [perm], w_size,
            lambda z, v, c, s=perm_shuffles: group_whiten(z, s[c * len(views) + v], group, axis, eps, minus))
    return _pairwise(whitened, loss_f)


def iternorm_whiten(x: torch.Tensor, iters: int = 4, axis: int = 0) -> torch.Tensor:
    """INTL ``Whitening2dIterNorm``: ``P_{k+1} = 1.5 P_k - 0.5 P_k^3 Sigma_N``, ``W = P_T / sqrt(tr Sigma)``.

    ``axis=0``: the ``N x N`` Gram of per-sample-centred rows across channels (the default of
    the INTL scripts); ``axis=1``: the ``D x D`` covariance of per-channel-centred rows.
    """
    xn = x - x.mean(dim=0 if axis == 1 else 1, keepdim=True)
    mat = xn if axis == 1 else xn.T  # rows are the "samples" of the covariance
    sigma = mat.T @ mat / (mat.shape[0] - 1)
    trace = sigma.diagonal().sum()
    sigma_norm = sigma / trace
    projection = torch.eye(sigma.shape[0], dtype=x.dtype, device=x.device)
    for _ in range(iters):
        projection = 1.5 * projection - 0.5 * torch.linalg.matrix_power(projection, 3) @ sigma_norm
    out = mat @ (projection / trace.sqrt())
    return out if axis == 1 else out.T


def trace_loss(x: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """INTL Eq. 9 (``TL``): ``sum_i (Var_i - 1)^2`` of the whitened output along ``axis``."""
    if axis == 0:
        x = x.T
    x = x - x.mean(dim=0)
    variances = x.pow(2).sum(dim=0) / (x.shape[0] - 1)
    return (variances - 1).pow(2).sum()


def intl_trade_off(batch_size: int, emb_dim: int, axis: int = 0) -> float:
    """INTL ``cal_trade_off``: ``(log2(bs) - 3) * 0.01`` for axis 0, ``log2(emb)`` for axis 1.

    ``bs`` is the global batch: the reference builds the model before dividing ``cfg.bs`` by
    the GPU count (``cifar/main.py``).
    """
    return (math.log2(batch_size if axis == 0 else emb_dim) - 3) * 0.01


def intl_loss(views: Sequence[torch.Tensor], trade_off: float, iters: int = 4, axis: int = 0) -> torch.Tensor:
    """INTL ``forward``: ``mean_{i>=1} [nmse(t_i, t_0) + trade_off (TL(t_i) + TL(t_0))]``."""
    whitened = [iternorm_whiten(z, iters, axis) for z in views]
    traces = [trace_loss(t, axis) for t in whitened]
    total = 0.0
    for i in range(1, len(views)):
        total = total + norm_mse(whitened[i], whitened[0]) + trade_off * (traces[i] + traces[0])
    return total / (len(views) - 1)
