"""W-MSE, CW-RGP and INTL losses against direct transcriptions of the authors' code (float64)."""

import torch
import torch.nn.functional as F
from torch.nn.functional import conv2d

from pretrain.losses.whitening import cwrgp_loss, intl_loss, intl_trade_off, wmse_loss


def ref_norm_mse(x0, x1):  # htdt methods/norm_mse.py
    x0 = F.normalize(x0)
    x1 = F.normalize(x1)
    return 2 - 2 * (x0 * x1).sum(dim=-1).mean()


def ref_cholesky_whitening(x, eps):
    """htdt methods/whitening.py Whitening2d.forward, training mode, track_running_stats=False."""
    num_features = x.shape[1]
    x = x.unsqueeze(2).unsqueeze(3)
    m = x.mean(0).view(num_features, -1).mean(-1).view(1, -1, 1, 1)
    xn = x - m
    T = xn.permute(1, 0, 2, 3).contiguous().view(num_features, -1)
    f_cov = torch.mm(T, T.permute(1, 0)) / (T.shape[-1] - 1)
    eye = torch.eye(num_features).type(f_cov.type())
    f_cov_shrinked = (1 - eps) * f_cov + eps * eye
    inv_sqrt = torch.linalg.solve_triangular(torch.linalg.cholesky(f_cov_shrinked), eye, upper=False)
    inv_sqrt = inv_sqrt.contiguous().view(num_features, num_features, 1, 1)
    decorrelated = conv2d(xn, inv_sqrt)
    return decorrelated.squeeze(2).squeeze(2)


def ref_wmse(samples_h, perms, w_size, eps):
    """htdt methods/w_mse.py WMSE.forward after the head, with the permutations given."""
    bs = len(samples_h[0])
    h = torch.cat(samples_h)
    num_pairs = len(samples_h) * (len(samples_h) - 1) // 2
    loss = 0
    for perm in perms:
        z = torch.empty_like(h)
        for idx in perm.view(-1, w_size):
            for i in range(len(samples_h)):
                z[idx + i * bs] = ref_cholesky_whitening(h[idx + i * bs], eps)
        for i in range(len(samples_h) - 1):
            for j in range(i + 1, len(samples_h)):
                loss += ref_norm_mse(z[i * bs:(i + 1) * bs], z[j * bs:(j + 1) * bs])
    return loss / (len(perms) * num_pairs)


def ref_cw_whitening(x, shuffle, eps, axis, minus, group):
    """winci-ai/CW-RGP base/methods/whitening.py Whitening2d.forward + Whitening2dZCA, training, no running stats."""
    w_dim = x.size(-1)
    m = x.mean(0 if axis == 1 else 1)
    m = m.view(1, -1) if axis == 1 else m.view(-1, 1)
    xn = x - m
    sigma_dim = w_dim // group
    if axis == 1:
        eye = torch.eye(sigma_dim).type(xn.type()).reshape(1, sigma_dim, sigma_dim).repeat(group, 1, 1)
    else:
        eye = torch.eye(x.size(0)).type(xn.type()).reshape(1, x.size(0), x.size(0)).repeat(group, 1, 1)
    if shuffle is None:
        shuffle = range(w_dim)
    if axis == 1:
        xn_g = xn[:, shuffle].reshape(-1, group, sigma_dim).permute(1, 0, 2)
    else:
        xn_g = xn[:, shuffle].reshape(-1, group, sigma_dim).permute(1, 2, 0)
    f_cov = torch.bmm(xn_g.permute(0, 2, 1), xn_g) / (xn_g.shape[1] - minus)
    sigma = (1 - eps) * f_cov + eps * eye
    u, eig, _ = sigma.svd()
    scale = eig.rsqrt()
    wm = torch.bmm(u, torch.diag_embed(scale))
    matrix = torch.bmm(wm, u.permute(0, 2, 1))
    decorrelated = torch.bmm(xn_g, matrix)
    shuffle = list(shuffle)
    shuffle_recover = [shuffle.index(i) for i in range(w_dim)]
    if axis == 1:
        return decorrelated.permute(1, 0, 2).reshape(-1, w_dim)[:, shuffle_recover]
    return decorrelated.permute(2, 0, 1).reshape(-1, w_dim)[:, shuffle_recover]


def ref_cwrgp(samples_h, perms, shuffles, w_size, eps, axis, minus, group):
    """winci-ai/CW-RGP base/methods/cwrgp.py CW_RGP.forward after the head, draws given."""
    bs = len(samples_h[0])
    h = torch.cat(samples_h)
    num_pairs = len(samples_h) * (len(samples_h) - 1) // 2
    loss = 0
    for perm, perm_shuffles in zip(perms, shuffles, strict=True):
        z = torch.empty_like(h)
        draw = iter(perm_shuffles)
        for idx in perm.view(-1, w_size):
            for i in range(len(samples_h)):
                z[idx + i * bs] = ref_cw_whitening(h[idx + i * bs], next(draw), eps, axis, minus, group)
        for i in range(len(samples_h) - 1):
            for j in range(i + 1, len(samples_h)):
                loss += ref_norm_mse(z[i * bs:(i + 1) * bs], z[j * bs:(j + 1) * bs])
    return loss / (len(perms) * num_pairs)


def ref_iternorm(x, axis, iterations):
    """winci-ai/INTL methods/whitening.py Whitening2d.forward + Whitening2dIterNorm, one process."""
    w_dim = x.size(-1)
    m = x.mean(0 if axis == 1 else 1)
    m = m.view(1, -1) if axis == 1 else m.view(-1, 1)
    xn = x - m
    if axis == 1:
        eye = torch.eye(w_dim).type(xn.type()).reshape(1, w_dim, w_dim).repeat(1, 1, 1)
        xn_g = xn.reshape(-1, 1, w_dim).permute(1, 0, 2)
    else:
        eye = torch.eye(x.size(0)).type(xn.type()).reshape(1, x.size(0), x.size(0)).repeat(1, 1, 1)
        xn_g = xn.reshape(-1, 1, w_dim).permute(1, 2, 0)
    sigma = torch.bmm(xn_g.permute(0, 2, 1), xn_g) / (xn_g.shape[1] - 1)
    trace = sigma.diagonal(offset=0, dim1=-1, dim2=-2).sum(-1)
    trace = trace.reshape(sigma.size(0), 1, 1)
    sigma_norm = sigma * trace.reciprocal()
    projection = eye
    for _ in range(iterations):
        projection = torch.baddbmm(projection, torch.matrix_power(projection, 3), sigma_norm, beta=1.5, alpha=-0.5)
    matrix = projection.mul_(trace.reciprocal().sqrt())
    decorrelated = torch.bmm(xn_g, matrix)
    if axis == 1:
        return decorrelated.permute(1, 0, 2).reshape(-1, w_dim)
    return decorrelated.permute(2, 0, 1).reshape(-1, w_dim)


def ref_tl(x, axis):  # winci-ai/INTL methods/intl.py TL
    if axis == 0:
        x = x.T
    N, _ = x.size()
    x = x - x.mean(dim=0)
    d = torch.pow(x, 2).sum(axis=0) / (N - 1)
    return d.add_(-1).pow_(2).sum()


def ref_intl(samples_h, trade_off, axis, iters):
    """winci-ai/INTL methods/intl.py INTL.forward after the projection."""
    loss = 0
    t = [ref_iternorm(x, axis, iters) for x in samples_h]
    tl = [ref_tl(x, axis) for x in t]
    for i in range(1, len(samples_h)):
        loss += ref_norm_mse(t[i], t[0]) + trade_off * (tl[i] + tl[0])
    return loss / (len(samples_h) - 1)


def _views(seed, n_views=2, batch=16, dim=8):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    return [(base + 0.6 * torch.randn(batch, dim, generator=g, dtype=torch.float64)).requires_grad_()
            for _ in range(n_views)]


def _assert_same(ours, ref, inputs):
    grads = torch.autograd.grad(ours, inputs)
    ref_grads = torch.autograd.grad(ref, inputs)
    assert abs(ours.item() - ref.item()) <= 1e-6 * max(1.0, abs(ref.item())), (ours.item(), ref.item())
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-6, atol=1e-8)


def test_wmse_matches_reference_with_sub_batches_and_three_views():
    views = _views(0, n_views=3, dim=4)  # W-MSE needs w_size > dim (a full-rank covariance)
    g = torch.Generator().manual_seed(1)
    perms = [torch.randperm(16, generator=g) for _ in range(2)]  # w_iter = 2, w_size = 8 -> 2 sub-batches
    _assert_same(wmse_loss(views, perms, 8, eps=0.0), ref_wmse(views, perms, 8, 0.0), views)
    _assert_same(wmse_loss(views, perms, 16, eps=0.1), ref_wmse(views, perms, 16, 0.1), views)


def test_cwrgp_matches_reference_channel_and_batch_axis():
    views = _views(2, dim=12)
    g = torch.Generator().manual_seed(3)
    perms = [torch.randperm(16, generator=g)]
    for axis, group, w_size in ((0, 1, 8), (0, 2, 4), (1, 3, 16)):  # full-rank covariances
        shuffles = [[torch.randperm(12, generator=g).tolist() for _ in range(2 * 16 // w_size)]]
        _assert_same(cwrgp_loss(views, perms, shuffles, w_size, group=group, axis=axis),
                     ref_cwrgp(views, perms, shuffles, w_size, 0.0, axis, 1, group), views)


def test_intl_matches_reference_both_axes():
    for axis in (0, 1):
        views = _views(4 + axis, n_views=3, dim=10)
        trade_off = intl_trade_off(16, 10, axis)
        _assert_same(intl_loss(views, trade_off, iters=4, axis=axis), ref_intl(views, trade_off, axis, 4), views)


def test_intl_trade_off_formula():
    # INTL methods/base.py cal_trade_off: (log2(bs) - 3) * 0.01 (axis 0), log2(emb) for axis 1
    assert intl_trade_off(256, 2048, 0) == (8 - 3) * 0.01
    assert intl_trade_off(256, 2048, 1) == (11 - 3) * 0.01
