"""Barlow Twins (Zbontar et al., ICML 2021): the cross-correlation of the two views' embeddings to identity.

Loss: Eq. 1, :func:`pretrain.losses.barlow.barlow_twins_loss`, a transcription of
facebookresearch/barlowtwins ``main.py::BarlowTwins.forward``, computed on the embeddings of
the global batch (gathered with gradient), so N ranks give the single-process loss and
gradient. Projector as solo-learn ``solo/methods/barlow_twins.py``: 3 Linear layers, BN + ReLU
between (``model.projector_hidden_dim`` -> ``projector_out_dim``). ``loss.lambd`` 0.0051 and
``loss.scale`` (solo-learn's ``scale_loss``, default 0.024 in ``add_and_assert_specific_cfg``;
its CIFAR / ImageNet-100 presets set 0.1). Views: asymmetric (solo-learn
``scripts/pretrain/cifar/barlow.yaml``: ``augmentations: asymmetric.yaml``).

Deliberate differences: the original all-reduces ``c`` without gradient, so its DDP gradient
is 1/world_size of the single-process one (solo-learn's too); no online linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from pretrain import distributed
from pretrain.heads import linear_mlp
from pretrain.losses.barlow import barlow_twins_loss
from pretrain.methods import register_method
from pretrain.methods.base import Method


@register_method("barlow_twins")
class BarlowTwins(Method):
    # lambd: paper Section 4 / barlowtwins main.py --lambd; scale: solo-learn solo/methods/barlow_twins.py default
    loss_defaults = {"lambd": 0.0051, "scale": 0.024}
    default_views = "asymmetric"

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg = config["model"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"],
                                    model_cfg["projector_out_dim"], 3, hidden_bn=True)
        self.lambd, self.scale = config["loss"]["lambd"], config["loss"]["scale"]

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, dict]:
        z1, z2 = (distributed.gather(self.projector(self.encoder(v))) for v in (view1, view2))
        return barlow_twins_loss(z1, z2, self.lambd, self.scale), {}
