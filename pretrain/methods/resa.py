"""ReSA: Representation Self-Assignment (Weng et al., ICML 2025), two variants.

``variant: paper`` (default) follows the Appendix B.2 pseudo-code at Eq. 2's scale: the weak
view ``x1`` and the standard view ``x2`` go through the online encoder/projector (and optional
predictor); with a momentum network ``A = sinkhorn(cos(h1, h1m))`` on the weak view's online
and momentum *encodings* and the loss is ``½[CE(cos(z1, z2m)/τ, A) + CE(cos(z2, z1m)/τ, A)]``
with CE the symmetric (row + column) cross-entropy (:func:`pretrain.losses.resa_loss`).
Without the momentum network (Table 11 ablation) ``A = sinkhorn(cos(h1, h1))`` and Eq. 2
applies to ``(z1, z2)``. Under DDP every tensor of the assignment and the loss is gathered
over ranks (embeddings with gradient), so N ranks compute exactly the single-process loss of
the same global batch.

``variant: official`` follows the authors' released code (winci-ai/resa ``method/resa.py``
and ``method/base.py``): each rank's weak-view online encodings are assigned against the
momentum encodings gathered from all ranks (a ``B_local x B_global`` matrix, Sinkhorn with
all-reduced normalisations, :func:`pretrain.losses.sinkhorn_distributed`); the loss is the
row-softmax cross-entropy averaged over every (online view q, momentum view v != q) pair, and
with multi-crop only the two global views go through the momentum branch. Gradients are
local (DDP averages them). Each rank's loss covers its own rows of the global problem (the
columns are the gathered momentum targets, the assignment's rows the sharded Sinkhorn's), so
the mean of the ranks' losses, which the engine logs, is the single-process loss of the global
batch, and DDP's averaged gradients are its gradient (equal shards; float64 check in
``tests/test_resa_official_ddp.py``); a single rank's value is only its share.

Both variants feed the loss an fp32 assignment (fp64 for fp64 features) also under bf16/fp16
autocast, as in the authors' code, where ``Q = torch.exp(scores / temp)`` (winci-ai/resa
``method/base.py`` line 47, ``sinkhorn_knopp``) runs in fp32 under autocast and ``cross_entropy``
(line 42) multiplies it uncast; a bf16 cast leaves row sums off by ~4e-4.

``assignment_source: embedding`` computes A from the embeddings instead (Figure 10 ablation).
Momentum 0.996 -> 1 on a per-step cosine schedule, τ = 0.4, Sinkhorn ε = 0.05 and 3 iterations
are the B.2 defaults. ``loss.prior`` / ``loss.prior_tau`` (default uniform, B.2 exactly): a power-law
column marginal for long-tailed data (:mod:`pretrain.losses.priors`, docs/priors.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain import distributed
from pretrain.heads import build_predictor, build_projector
from pretrain.losses import cosine_similarity_matrix, resa_loss, row_cross_entropy, sinkhorn, sinkhorn_distributed
from pretrain.losses.priors import PRIOR_DEFAULTS, check_prior_config, prior_from_config
from pretrain.methods import register_method
from pretrain.methods.base import Method
from pretrain.precision import at_least_float32
from resa_core.errors import UserError


@register_method("resa")
class ReSA(Method):
    # B.2 "Universal settings": τ 0.4, Sinkhorn ε 0.05 x 3 iterations; A from the encodings.
    loss_defaults = {"temperature": 0.4, "sinkhorn_eps": 0.05, "sinkhorn_iters": 3,
                     "assignment_source": "encoding",  # or "embedding" (paper Figure 10)
                     **PRIOR_DEFAULTS}  # the Sinkhorn's column marginal (pretrain.losses.resa, docs/priors.md)
    default_views = "weak_standard"  # Section 4.3: A from the weak view, Eq. 2 on (weak, standard)
    supports_multicrop = True  # official variant only (check_config)

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        check_prior_config(config["loss"], source)
        if config["loss"]["assignment_source"] not in ("encoding", "embedding"):
            raise UserError(f"{source}: loss.assignment_source = {config['loss']['assignment_source']!r}; "
                            "expected one of ('encoding', 'embedding')")
        if config["augment"]["num_small_crops"] and config["variant"] != "official":
            raise UserError(f"{source}: augment.num_small_crops = {config['augment']['num_small_crops']} needs "
                            "variant: official (the paper variant's Eq. 2 pairs exactly two views)")
        if config["variant"] == "official" and not config["model"]["momentum_encoder"]:
            raise UserError(f"{source}: variant 'official' needs model.momentum_encoder=true (the released code's "
                            "momentum-free variant is not reproduced); use variant=paper for the Table 11 ablation")

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, loss_cfg = config["model"], config["loss"]
        self.variant = config.get("variant", "paper")
        self.encoder = encoder
        self.projector = build_projector(encoder.feature_dim, config)
        self.predictor = build_predictor(config)
        self.temperature = loss_cfg["temperature"]
        self.sinkhorn_eps = loss_cfg["sinkhorn_eps"]
        self.sinkhorn_iters = loss_cfg["sinkhorn_iters"]
        self.assignment_source = loss_cfg["assignment_source"]
        self.prior_cfg = {key: loss_cfg.get(key, default) for key, default in PRIOR_DEFAULTS.items()}
        self.use_momentum = model_cfg["momentum_encoder"]
        if self.variant == "official" and not self.use_momentum:
            raise UserError("variant 'official' needs model.momentum_encoder=true (the released code's "
                            "momentum-free variant is not reproduced); use variant=paper for the Table 11 ablation")
        if self.use_momentum:  # the authors' update_momentum_params: encoder and projector, parameters only
            self.momentum_pairs = (("encoder", "momentum_encoder"), ("projector", "momentum_projector"))
            self.setup_momentum(config)

    def embed(self, encoding: torch.Tensor) -> torch.Tensor:
        embedding = self.projector(encoding)
        return self.predictor(embedding) if self.predictor is not None else embedding

    def assignment(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Self-assignment A from the cosine similarity of the features (no gradient, fp32 or fp64).

        Paper variant: both gathered, a square global matrix. Official variant: ``source``
        local, ``target`` gathered, ``B_local x B_global`` with all-reduced normalisations.
        """
        device_type = source.device.type
        with torch.no_grad(), torch.autocast(device_type, enabled=False):
            scores = cosine_similarity_matrix(at_least_float32(source), at_least_float32(target))
            prior = prior_from_config(self.prior_cfg, scores.shape[1])  # over the (global) target columns
            if self.variant == "official":
                return sinkhorn_distributed(scores, self.sinkhorn_eps, self.sinkhorn_iters, prior)
            return sinkhorn(scores, self.sinkhorn_eps, self.sinkhorn_iters, prior)

    def forward(self, weak: torch.Tensor, standard: torch.Tensor, *small: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if self.variant == "official":
            return self._forward_official([weak, standard, *small])
        h1, h2 = self.encoder(weak), self.encoder(standard)
        z1, z2 = self.embed(h1), self.embed(h2)
        if self.use_momentum:
            with torch.no_grad():
                h1m, h2m = self.momentum_encoder(weak), self.momentum_encoder(standard)
                z1m, z2m = self.momentum_projector(h1m), self.momentum_projector(h2m)
        else:
            h1m, z1m, z2m = h1, z1, z2
        source, target = (h1, h1m) if self.assignment_source == "encoding" else (z1, z1m)
        assign = self.assignment(distributed.gather(source.detach()), distributed.gather(target.detach()))
        z1, z2 = distributed.gather(z1), distributed.gather(z2)
        if self.use_momentum:
            z1m, z2m = distributed.gather(z1m), distributed.gather(z2m)
        else:
            z1m, z2m = z1, z2
        loss = resa_loss(z1, z2, z1m, z2m, assign, self.temperature)  # A stays fp32 under AMP
        return loss, {"assign_diag": assign.diagonal().mean().item()}

    def _forward_official(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
        encodings = [self.encoder(view) for view in views]
        embeddings = [F.normalize(self.embed(h), dim=1) for h in encodings]
        with torch.no_grad():
            encodings_m = [self.momentum_encoder(view) for view in views[:2]]
            embeddings_m = [self.momentum_projector(h) for h in encodings_m]
            targets = [distributed.gather(F.normalize(z, dim=1), with_grad=False) for z in embeddings_m]
        if self.assignment_source == "encoding":
            source, target = encodings[0].detach(), encodings_m[0]
        else:
            source, target = embeddings[0].detach(), embeddings_m[0]
        assign = self.assignment(source, distributed.gather(target, with_grad=False))
        terms = [row_cross_entropy(embeddings[q] @ targets[v].T / self.temperature, assign)  # A fp32 under AMP
                 for q in range(len(embeddings)) for v in range(len(targets)) if v != q]
        loss = torch.stack(terms).mean()
        offset = self.rank_offset(assign.shape[0])
        own = assign[:, offset:offset + assign.shape[0]].diagonal().mean().item()
        return loss, {"assign_diag": own}

    @staticmethod
    def rank_offset(local_rows: int) -> int:
        """Column of this rank's first sample in a gathered (rank-ordered) matrix."""
        return torch.distributed.get_rank() * local_rows if distributed.world_size() > 1 else 0
