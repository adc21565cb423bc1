"""LARS (You et al. 2017, Eq. 6) as solo-learn implements it (``solo/utils/lars.py::LARS``).

SGD whose per-parameter update is scaled by the trust ratio
``eta * ||w|| / (||g|| + wd * ||w|| + eps)``, weight decay added inside the scaled part. With
``clip_lr`` the ratio is divided by the lr and capped at 1 (``min(ratio / lr, 1)``);
``exclude_bias_n_norm`` leaves 1-D parameters (biases, BN) unscaled and without weight decay,
as do parameters or gradients of zero norm. Momentum as torch's SGD (dampening 0, no Nesterov).
"""

from __future__ import annotations

import torch


class LARS(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, eta: float = 1e-3,
                 eps: float = 1e-8, clip_lr: bool = False, exclude_bias_n_norm: bool = False):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, eps=eps, clip_lr=clip_lr,
                        exclude_bias_n_norm=exclude_bias_n_norm)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                if p.ndim != 1 or not group["exclude_bias_n_norm"]:
                    p_norm, g_norm = torch.norm(p), torch.norm(p.grad)
                    if p_norm != 0 and g_norm != 0:
                        lars_lr = group["eta"] * p_norm / (g_norm + p_norm * weight_decay + group["eps"])
                        if group["clip_lr"]:
                            lars_lr = torch.clamp(lars_lr / group["lr"], max=1.0)
                        d_p = d_p.add(p, alpha=weight_decay) * lars_lr
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.clone(d_p).detach()
                    else:
                        state["momentum_buffer"].mul_(momentum).add_(d_p)
                    d_p = state["momentum_buffer"]
                p.add_(d_p, alpha=-group["lr"])
        return loss
