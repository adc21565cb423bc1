"""BYOL (Grill et al., NeurIPS 2020): predict the momentum network's projection of the other view.

Loss: Eq. 2 of the paper, ``2 - 2 cos(q(z), z'_momentum)`` symmetrised over the views,
:func:`pretrain.losses.cosine.byol_loss`; the sum over (momentum view v1 of the two large views,
online view v2 ≠ v1 of all views) transcribes solo-learn ``solo/methods/byol.py::training_step``
(the authors' deepmind-research/byol is JAX). Projector and predictor Linear-BN-ReLU-Linear
(``model.projector_*``, ``model.predictor_hidden_dim``); momentum 0.99 -> 1 on BYOL's cosine
schedule (solo-learn's CIFAR/ImageNet-100 value; the paper's ImageNet one is 0.996); views
asymmetric (BYOL Table 6 / solo-learn ``augmentations/asymmetric.yaml``).

Deliberate difference: no online linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from pretrain.heads import linear_mlp
from pretrain.losses.cosine import byol_loss
from pretrain.methods import register_method
from pretrain.methods.base import Method


@register_method("byol")
class BYOL(Method):
    loss_defaults: dict = {}
    default_views = "asymmetric"
    supports_multicrop = True
    momentum_pairs = (("encoder", "momentum_encoder"), ("projector", "momentum_projector"))

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg = config["model"]
        hidden, out_dim = model_cfg["projector_hidden_dim"], model_cfg["projector_out_dim"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, hidden, out_dim, 2, hidden_bn=True)
        self.predictor = linear_mlp(out_dim, model_cfg["predictor_hidden_dim"] or hidden, out_dim, 2, hidden_bn=True)
        self.setup_momentum(config)

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        predictions = [self.predictor(self.projector(self.encoder(v))) for v in views]
        with torch.no_grad():
            targets = [self.momentum_projector(self.momentum_encoder(v)) for v in views[:2]]
        loss = sum(byol_loss(predictions[v2], targets[v1])
                   for v1 in range(2) for v2 in range(len(views)) if v2 != v1)
        return loss, {}
