"""INTL (Weng et al., ICLR 2024): iterative normalisation (IterNorm) with the trace loss.

Loss: :func:`pretrain.losses.whitening.intl_loss`, a transcription of winci-ai/INTL
``methods/intl.py::INTL.forward`` and ``methods/whitening.py::Whitening2dIterNorm`` (Newton's
iterations, ``loss.iters`` = 4, along ``loss.axis`` = 0): normalised MSE of every view to the
first plus ``trade_off`` x their trace losses, on the global batch (the original gathers inside
its whitening, ``FullGatherLayer``; so do we, with gradient). ``loss.trade_off`` None: INTL's
``cal_trade_off``, ``(log2(global batch) - 3) * 0.01`` for axis 0. Projector:
``src/model.py::get_projection``, 3 layers (bias-free Linear, BN, ReLU), a biased last Linear.
Views: INTL's CIFAR pipeline (``cifar/transform.py``), symmetric up to its solarization
``[0.0, 0.2]`` -- the asymmetric pair.

Deliberate differences: the INTL-M momentum variant (``methods/intl_m.py``) is not reproduced;
no online classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from pretrain import distributed
from pretrain.heads import linear_mlp
from pretrain.losses.whitening import intl_loss, intl_trade_off
from pretrain.methods import register_method
from pretrain.methods.base import Method
from resa_core.errors import UserError


@register_method("intl")
class INTL(Method):
    loss_defaults = {"iters": 4, "axis": 0, "trade_off": None}  # INTL cfg.py --iters 4 --axis 0; cal_trade_off
    default_views = "asymmetric"
    supports_multicrop = True  # cfg.py --nmb_crops

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        if config["loss"]["axis"] not in (0, 1):
            raise UserError(f"{source}: loss.axis = {config['loss']['axis']!r}; expected 0 (channel) or 1 (batch)")

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, loss_cfg = config["model"], config["loss"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"],
                                    model_cfg["projector_out_dim"], 3, hidden_bn=True, bias=False)
        self.iters, self.axis = loss_cfg["iters"], loss_cfg["axis"]
        self.trade_off = loss_cfg["trade_off"]
        if self.trade_off is None:
            self.trade_off = intl_trade_off(config["optim"]["batch_size"], model_cfg["projector_out_dim"], self.axis)

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        z = [distributed.gather(self.projector(self.encoder(v))) for v in views]
        with torch.autocast(z[0].device.type, enabled=False):  # Newton's iterations in fp32 at least
            z = [x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in z]
            return intl_loss(z, self.trade_off, self.iters, self.axis), {}
