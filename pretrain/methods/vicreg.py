"""VICReg (Bardes et al., ICLR 2022): variance, invariance and covariance regularisation.

Loss: Eq. 6, :func:`pretrain.losses.vicreg.vicreg_loss`, a transcription of
facebookresearch/vicreg ``main_vicreg.py::VICReg.forward`` on the global batch (gathered with
gradient, as the original gathers for the variance and covariance terms). Projector as
solo-learn ``solo/methods/vicreg.py``: 3 Linear layers, BN + ReLU between. Coefficients
``loss.sim_coeff`` / ``std_coeff`` / ``cov_coeff`` 25 / 25 / 1 (paper Section 4.1; solo-learn's
``sim_loss_weight`` / ``var_loss_weight`` / ``cov_loss_weight``). Views: solo-learn's
``scripts/pretrain/cifar/vicreg.yaml`` lists one augmentation for both crops (symmetric, with
solarization 0.1).

Deliberate differences: the variance term is the original's ``[v(x) + v(y)] / 2``; solo-learn's
``variance_loss`` sums the two branches, so at equal ``var_loss_weight`` its variance term
weighs twice ours. No online linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from pretrain import distributed
from pretrain.heads import linear_mlp
from pretrain.losses.vicreg import vicreg_loss
from pretrain.methods import register_method
from pretrain.methods.base import Method


@register_method("vicreg")
class VICReg(Method):
    loss_defaults = {"sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0}  # paper Section 4.1
    default_views = "symmetric"

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg = config["model"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"],
                                    model_cfg["projector_out_dim"], 3, hidden_bn=True)
        self.coeffs = (config["loss"]["sim_coeff"], config["loss"]["std_coeff"], config["loss"]["cov_coeff"])

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, dict]:
        z1, z2 = (distributed.gather(self.projector(self.encoder(v))) for v in (view1, view2))
        return vicreg_loss(z1, z2, *self.coeffs), {}
