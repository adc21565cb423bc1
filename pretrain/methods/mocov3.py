"""MoCo v3 (Chen, Xie & He, ICCV 2021) for ResNets and ViTs.

Loss: Algorithm 1 of the paper — symmetrised InfoNCE of the online predictions against the
momentum projections of the other view, negatives the other keys of the global batch, scaled by
``2τ`` — :func:`pretrain.losses.moco.moco_v3_infonce`, a transcription of the authors'
facebookresearch/moco-v3 ``moco/builder.py::MoCo.contrastive_loss`` (= solo-learn
``solo/losses/mocov3.py``). Heads from ``builder.py::MoCo._build_mlp``: bias-free Linear-BN-ReLU
blocks; projector 2 layers for ResNets (``MoCo_ResNet``), 3 for ViTs (``MoCo_ViT``), ending in
an affine-free BN; predictor 2 layers, with the final BN only for ViTs. Momentum 0.99 -> 1
(cosine, as the authors' ``adjust_moco_momentum``), views asymmetric (BYOL's, as the paper).

Deliberate differences: momentum and optimizer values come from the presets (solo-learn's for
ResNet-18: LARS, base lr 0.3); no online linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from pretrain.heads import linear_mlp
from pretrain.losses.moco import moco_v3_infonce
from pretrain.methods import register_method
from pretrain.methods.base import Method
from pretrain.models import arch_spec


@register_method("mocov3")
class MoCoV3(Method):
    loss_defaults = {"temperature": 0.2}  # solo-learn scripts/pretrain/*/mocov3.yaml; moco-v3 README (ViT)
    default_views = "asymmetric"
    momentum_pairs = (("encoder", "momentum_encoder"), ("projector", "momentum_projector"))

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg = config["model"]
        vit = arch_spec(config["arch"]).family == "vit"
        hidden, out_dim = model_cfg["projector_hidden_dim"], model_cfg["projector_out_dim"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, hidden, out_dim, 3 if vit else 2, hidden_bn=True,
                                    bias=False, last_bias=False, last_bn=True)
        self.predictor = linear_mlp(out_dim, model_cfg["predictor_hidden_dim"] or hidden, out_dim, 2,
                                    hidden_bn=True, bias=False, last_bias=False, last_bn=vit)
        self.setup_momentum(config)
        self.temperature = config["loss"]["temperature"]

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, dict]:
        q1, q2 = (self.predictor(self.projector(self.encoder(v))) for v in (view1, view2))
        with torch.no_grad():
            k1, k2 = (self.momentum_projector(self.momentum_encoder(v)) for v in (view1, view2))
        loss = moco_v3_infonce(q1, k2, self.temperature) + moco_v3_infonce(q2, k1, self.temperature)
        return loss, {}
