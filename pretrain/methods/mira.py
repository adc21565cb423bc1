"""MIRA (Lee et al., NeurIPS 2022): mutual-information-regularised pseudo-labels, swapped prediction, EMA teacher.

Loss: Eqs. 5, 7 and 8, :mod:`pretrain.losses.mira` (fixed-point pseudo-labels of the teacher's
logits of the two large crops at ``loss.teacher_temperature`` 0.225 with ``loss.beta`` 2/3 and
``loss.fixed_point_iters`` 30, each predicted from every other crop's student logits at
``loss.student_temperature`` 0.1; Sec. 4.1). Architecture as Sec. 4.1 "Architecture" and the
authors' movinghoon/mira ``train.py::Model`` (commit 2a62538): projector a 3-layer MLP
``[feature, model.projector_hidden_dim, model.projector_out_dim]`` (bias-free hidden Linear, BN,
ReLU; d = 256), then an L2-normalisation layer and a weight-normalised, bias-free prototype layer
of ``loss.num_prototypes`` (K = 3000) rows whose norm ``weight_g`` is frozen at 1 (the original's
``weight_g.requires_grad = False``; :class:`pretrain.methods.dino.NormedLinear`). EMA teacher of
encoder and projector (momentum 0.99 -> 1 cosine, Sec. 4.1); the teacher uses the online
prototype layer (the original copies the online ``head`` into the EMA model every step: "head is
shared"). Prototype gradients are dropped while ``epoch < loss.freeze_prototypes_epochs``
(``--freeze-head-epochs`` 1). Multi-crop: ``augment.num_small_crops`` student-only crops
(Sec. 4.1: two 224 + six 96 px).

``loss.beta_initial``: the original's ``train.py`` anneals beta from ``--beta-initial`` 0.75 to
``--beta-final`` 2/3 with a cosine over the run; the paper states beta = 2/3 only, so the default
``beta_initial`` equals ``beta`` (constant). Deliberate differences: the teacher EMA is applied at
the step's commit (the original applies it at the start of the next step's forward: the same
sequence); the weight norm is written out instead of torch's deprecated hook; no online classifier.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pretrain.heads import linear_mlp
from pretrain.losses.mira import mira_loss
from pretrain.losses.priors import PRIOR_DEFAULTS, check_prior_config, prior_from_config
from pretrain.methods import register_method
from pretrain.methods.base import Method
from pretrain.methods.dino import L2Norm, NormedLinear
from resa_core.errors import UserError


@register_method("mira")
class MIRA(Method):
    # Sec. 4.1: K = 3000, tau_s = 0.1, tau_t = 0.225, beta = 2/3, 30 fixed-point steps;
    # train.py defaults: --freeze-head-epochs 1, --beta-initial 0.75 (not in the paper: off by default)
    loss_defaults = {"num_prototypes": 3000, "student_temperature": 0.1, "teacher_temperature": 0.225,
                     "beta": 2.0 / 3.0, "beta_initial": 2.0 / 3.0, "fixed_point_iters": 30,
                     "freeze_prototypes_epochs": 1,
                     **PRIOR_DEFAULTS}  # Eq. 4's marginal term as a KL to this prior (pretrain.losses.mira)
    default_views = "asymmetric"  # Sec. 4.1: the augmentations of DINO (Caron et al. [9]), BYOL's asymmetric pair
    supports_multicrop = True
    momentum_pairs = (("encoder", "momentum_encoder"), ("projector", "momentum_projector"))

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        cfg = config["loss"]
        check_prior_config(cfg, source)
        for key in ("beta", "beta_initial"):
            if not 0.0 <= cfg[key] < 1.0:
                raise UserError(f"{source}: loss.{key} = {cfg[key]} must lie in [0, 1) (MIRA Proposition 1)")
        if cfg["fixed_point_iters"] < 0:
            raise UserError(f"{source}: loss.fixed_point_iters = {cfg['fixed_point_iters']} must be >= 0")

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, self.loss_cfg = config["model"], dict(config["loss"])
        self.encoder = encoder
        # train.py::Model: Linear(no bias)-BN-ReLU x2, Linear(bias) to d
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"],
                                    model_cfg["projector_out_dim"], 3, hidden_bn=True, bias=False)
        self.prototypes = nn.Sequential(L2Norm(), NormedLinear(model_cfg["projector_out_dim"],
                                                               self.loss_cfg["num_prototypes"], freeze_norm=True))
        self.prior = prior_from_config(self.loss_cfg, self.loss_cfg["num_prototypes"])  # None: uniform (the paper)
        self.setup_momentum(config)
        self.register_buffer("progress", torch.zeros((), dtype=torch.float64))  # run progress for beta, checkpointed

    def beta(self) -> float:
        """train.py::beta_momentum: cosine from ``beta_initial`` to ``beta`` over the run."""
        final, initial = self.loss_cfg["beta"], self.loss_cfg["beta_initial"]
        return final - 0.5 * (1.0 + math.cos(math.pi * float(self.progress))) * (final - initial)

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        cfg, beta = self.loss_cfg, self.beta()
        student = [self.prototypes(self.projector(self.encoder(v))) for v in views]
        with torch.no_grad():
            teacher = [self.prototypes(self.momentum_projector(self.momentum_encoder(v))) for v in views[:2]]
        loss = mira_loss(student, teacher, cfg["student_temperature"], cfg["teacher_temperature"], beta,
                         cfg["fixed_point_iters"], self.prior)
        return loss, {"beta": beta}

    def before_optimizer_step(self) -> None:
        """The original's ``p.grad = None`` for the head while ``epoch < --freeze-head-epochs``."""
        if self.epoch < self.loss_cfg["freeze_prototypes_epochs"]:
            for p in self.prototypes.parameters():
                p.grad = None

    @torch.no_grad()
    def after_step(self, progress: float) -> dict:
        self.progress.fill_(progress)
        return super().after_step(progress)
