"""SimSiam (Chen & He, CVPR 2021): negative cosine between a prediction and the stop-gradient projection.

Loss: Eq. 1-2 of the paper, ``½ D(p1, sg(z2)) + ½ D(p2, sg(z1))`` with ``D = -cos``,
:func:`pretrain.losses.cosine.simsiam_loss`; heads as the authors' facebookresearch/simsiam
``simsiam/builder.py`` and solo-learn ``solo/methods/simsiam.py``: projector 3 x (Linear-BN),
ReLU between, an affine-free BN last; predictor Linear-BN-ReLU-Linear with a 512 bottleneck.
The predictor keeps the peak lr (``static_lr``; the paper's "fix lr for predictor", solo-learn's
``learnable_params``).

Deliberate difference: the projector's last Linear has no bias (solo-learn keeps a bias frozen
at its random init; the affine-free BN after it removes it in training); no online classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from pretrain.heads import linear_mlp
from pretrain.losses.cosine import simsiam_loss
from pretrain.methods import register_method
from pretrain.methods.base import Method


@register_method("simsiam")
class SimSiam(Method):
    loss_defaults: dict = {}
    default_views = "symmetric"  # solo-learn scripts/pretrain/cifar/simsiam.yaml: symmetric_weak.yaml

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg = config["model"]
        hidden, out_dim = model_cfg["projector_hidden_dim"], model_cfg["projector_out_dim"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, hidden, out_dim, 3, hidden_bn=True, bias=False,
                                    last_bias=False, last_bn=True)
        self.predictor = linear_mlp(out_dim, model_cfg["predictor_hidden_dim"] or hidden, out_dim, 2,
                                    hidden_bn=True, bias=False)

    def param_groups(self) -> list[dict]:
        online = [*self.encoder.parameters(), *self.projector.parameters()]
        return [{"params": [p for p in online if p.requires_grad]},
                {"params": list(self.predictor.parameters()), "static_lr": True}]

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, dict]:
        z1, z2 = (self.projector(self.encoder(v)) for v in (view1, view2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return simsiam_loss(p1, z2) / 2 + simsiam_loss(p2, z1) / 2, {}
