"""SimCLR (Chen et al., ICML 2020): NT-Xent over the two views of the global batch.

Loss: Eq. 1 of the paper, :func:`pretrain.losses.nt_xent.nt_xent`, a transcription of
solo-learn ``solo/losses/simclr.py::simclr_loss_func`` (the authors' google-research/simclr is
TensorFlow; solo-learn is the PyTorch reference ReSA Table 1 follows). Projector as solo-learn's
``solo/methods/simclr.py``: Linear-ReLU-Linear (``model.projector_hidden_dim`` ->
``projector_out_dim``). Small multi-crop views join the loss as further views of each sample,
as solo-learn does. Views: symmetric (solo-learn ``augmentations/symmetric.yaml``).

Deliberate differences: sample identities are positions in the global batch (solo-learn uses
dataset indices; the masks are the same); no online linear classifier (solo-learn trains one
beside the loss; our linear probe is a separate downstream stage).
"""

from __future__ import annotations

import torch
from torch import nn

from pretrain import distributed
from pretrain.heads import linear_mlp
from pretrain.losses.nt_xent import nt_xent
from pretrain.methods import register_method
from pretrain.methods.base import Method


@register_method("simclr")
class SimCLR(Method):
    loss_defaults = {"temperature": 0.2}  # solo-learn scripts/pretrain/cifar/simclr.yaml method_kwargs
    default_views = "symmetric"
    supports_multicrop = True

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg = config["model"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"],
                                    model_cfg["projector_out_dim"], 2, hidden_bn=False)
        self.temperature = config["loss"]["temperature"]

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        z = torch.cat([self.projector(self.encoder(view)) for view in views])
        local = views[0].shape[0]
        ids = torch.arange(local, device=z.device) + local * distributed.rank()
        return nt_xent(z, ids.repeat(len(views)), self.temperature), {}
