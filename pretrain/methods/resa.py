"""ReSA: Representation Self-Assignment (Weng et al., ICML 2025), paper variant.

Follows the Appendix B.2 pseudo-code: the weak view ``x1`` and the standard view ``x2`` go
through the online encoder/projector (and optional predictor); with a momentum network the
assignment is ``A = sinkhorn(cos(h1, h1m))`` on the weak view's online and momentum
*encodings* and the loss is ``½[CE(cos(z1, z2m)/τ, A) + CE(cos(z2, z1m)/τ, A)]``
(:func:`pretrain.losses.resa_loss`, Eq. 2 scale). Without the momentum network (Table 11
ablation) ``A = sinkhorn(cos(h1, h1))`` and Eq. 2 applies to ``(z1, z2)``.
``assignment_source: embedding`` computes A from the embeddings instead (Figure 10 ablation).
Momentum 0.996 -> 1 on a per-step cosine schedule, τ = 0.4, Sinkhorn ε = 0.05 and 3 iterations
are the B.2 defaults.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from pretrain.heads import build_predictor, build_projector
from pretrain.losses import cosine_similarity_matrix, resa_loss, sinkhorn
from pretrain.methods import register_method


def cosine_momentum(base: float, final: float, progress: float) -> float:
    """BYOL's schedule: ``final - (final - base) * (cos(pi * progress) + 1) / 2``."""
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2


@register_method("resa")
class ReSA(nn.Module):
    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, loss_cfg = config["model"], config["loss"]
        self.encoder = encoder
        self.projector = build_projector(encoder.feature_dim, model_cfg)
        self.predictor = build_predictor(model_cfg)
        self.temperature = loss_cfg["temperature"]
        self.sinkhorn_eps = loss_cfg["sinkhorn_eps"]
        self.sinkhorn_iters = loss_cfg["sinkhorn_iters"]
        self.assignment_source = loss_cfg["assignment_source"]
        self.momentum_base = model_cfg["momentum_base"]
        self.momentum_final = model_cfg["momentum_final"]
        self.momentum = self.momentum_base
        self.use_momentum = model_cfg["momentum_encoder"]
        if self.use_momentum:
            self.momentum_encoder = copy.deepcopy(encoder).requires_grad_(False)
            self.momentum_projector = copy.deepcopy(self.projector).requires_grad_(False)

    def embed(self, encoding: torch.Tensor) -> torch.Tensor:
        embedding = self.projector(encoding)
        return self.predictor(embedding) if self.predictor is not None else embedding

    def assignment(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Self-assignment A from the similarity of the weak view's features (no gradient)."""
        with torch.no_grad():
            return sinkhorn(cosine_similarity_matrix(source.float(), target.float()),
                            self.sinkhorn_eps, self.sinkhorn_iters)

    def forward(self, weak: torch.Tensor, standard: torch.Tensor) -> tuple[torch.Tensor, dict]:
        h1, h2 = self.encoder(weak), self.encoder(standard)
        z1, z2 = self.embed(h1), self.embed(h2)
        if self.use_momentum:
            with torch.no_grad():
                h1m, h2m = self.momentum_encoder(weak), self.momentum_encoder(standard)
                z1m, z2m = self.momentum_projector(h1m), self.momentum_projector(h2m)
        else:
            h1m, z1m, z2m = h1, z1, z2
        if self.assignment_source == "encoding":
            assign = self.assignment(h1, h1m)
        else:
            assign = self.assignment(z1, z1m)
        loss = resa_loss(z1, z2, z1m, z2m, assign.to(z1.dtype), self.temperature)
        return loss, {"assign_diag": assign.diagonal().mean().item()}

    @torch.no_grad()
    def after_step(self, progress: float) -> dict:
        """EMA of the momentum encoder and projector parameters, then advance the schedule.

        Their BN running statistics are their own (they run in train mode), as in the
        authors' ``update_momentum_params``, which averages parameters only.
        """
        if not self.use_momentum:
            return {}
        m = self.momentum
        for online, target in ((self.encoder, self.momentum_encoder), (self.projector, self.momentum_projector)):
            for p_online, p_target in zip(online.parameters(), target.parameters(), strict=True):
                p_target.mul_(m).add_(p_online.detach(), alpha=1 - m)
        self.momentum = cosine_momentum(self.momentum_base, self.momentum_final, progress)
        return {"momentum": m}

    def transfer_encoders(self) -> dict[str, nn.Module]:
        """The encoders a checkpoint exports (DESIGN.md contract 1)."""
        encoders = {"encoder": self.encoder}
        if self.use_momentum:
            encoders["momentum_encoder"] = self.momentum_encoder
        return encoders
