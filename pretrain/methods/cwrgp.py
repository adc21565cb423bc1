"""CW-RGP (Weng et al., NeurIPS 2022): channel whitening with random group partition.

Loss: :func:`pretrain.losses.whitening.cwrgp_loss`, a transcription of winci-ai/CW-RGP
``base/methods/cwrgp.py::CW_RGP.forward`` with ``Whitening2dZCA``: W-MSE's structure (sub-batches
of ``loss.w_size``, ``loss.w_iter`` partitions, normalised MSE over view pairs) with each view of
each sub-batch whitened along ``loss.axis`` (0: channel whitening, the paper's) by ZCA in
``loss.group`` groups of channels, the channels freshly permuted per sub-batch and view (the
random group partition). Projector: ``base/model.py::get_head``, Linear-BN-ReLU-Linear.
Defaults are ``base/cfg.py``'s and ``scripts/base.sh``'s CIFAR row (w_size 64, group 4).

DDP and draws as :mod:`pretrain.methods.wmse` (global batch gathered with gradient, permutations
from a ``(seed, step)`` generator). Deliberate differences: ZCA via ``eigh`` (the original's
``svd``; equal on a symmetric PSD matrix); no online classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from pretrain import distributed
from pretrain.heads import linear_mlp
from pretrain.losses.whitening import cwrgp_loss
from pretrain.methods import register_method
from pretrain.methods.wmse import StepSeededDraws, check_sub_batches
from resa_core.errors import UserError


@register_method("cwrgp")
class CWRGP(StepSeededDraws):
    # winci-ai/CW-RGP base/cfg.py defaults (--w_eps 0, --w_iter 1, --axis 0, --minus 1, random groups on)
    # and scripts/base.sh CIFAR rows (--w_size 64 --group 4)
    loss_defaults = {"w_size": 64, "w_iter": 1, "w_eps": 0.0, "group": 4, "axis": 0, "minus": 1,
                     "random_group": True, "normalize": True}
    default_views = "symmetric"
    supports_multicrop = True  # base/cfg.py --num_samples: every pair of views

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        check_sub_batches(config, source)
        loss_cfg = config["loss"]
        if loss_cfg["axis"] not in (0, 1):
            raise UserError(f"{source}: loss.axis = {loss_cfg['axis']!r}; expected 0 (channel) or 1 (batch)")
        if config["model"]["projector_out_dim"] % loss_cfg["group"]:
            raise UserError(f"{source}: model.projector_out_dim = {config['model']['projector_out_dim']} is not "
                            f"divisible by loss.group = {loss_cfg['group']}")

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, loss_cfg = config["model"], config["loss"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"],
                                    model_cfg["projector_out_dim"], 2, hidden_bn=True)
        self.loss_cfg = dict(loss_cfg)
        self.setup_draws(config)

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        cfg = self.loss_cfg
        z = [distributed.gather(self.projector(self.encoder(v))) for v in views]
        batch, dim = z[0].shape
        g = self.generator()
        perms, shuffles = [], []
        for _ in range(cfg["w_iter"]):
            perms.append(torch.randperm(batch, generator=g).to(z[0].device))
            draws = batch // cfg["w_size"] * len(views)
            shuffles.append([torch.randperm(dim, generator=g) if cfg["random_group"] else None for _ in range(draws)])
        with torch.autocast(z[0].device.type, enabled=False):  # eigh in fp32 at least
            z = [x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in z]
            loss = cwrgp_loss(z, perms, shuffles, cfg["w_size"], cfg["group"], cfg["axis"], cfg["w_eps"],
                              cfg["minus"], cfg["normalize"])
        return loss, {}
