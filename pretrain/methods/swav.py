"""SwAV (Caron et al., NeurIPS 2020): swapped prediction of Sinkhorn codes over learnable prototypes.

Loss: Eqs. 2-3, :mod:`pretrain.losses.swav`, transcribing facebookresearch/swav
``main_swav.py::train`` and ``distributed_sinkhorn``: embeddings L2-normalised, prototype scores
``z @ C^T``, codes by Sinkhorn (``loss.sinkhorn_eps`` 0.05, ``sinkhorn_iters`` 3) on the scores of
the two large crops (``crops_for_assign`` 0 and 1), each predicted from every other crop at
``loss.temperature`` 0.1. The Sinkhorn normalisations are all-reduced over ranks, as the
original's, so N ranks give the codes of the single-process global batch; the loss is each
rank's mean and DDP averages the gradients, which is the single-process gradient.

Prototypes (``loss.num_prototypes``, bias-free Linear) are re-normalised after every optimizer
step (the original normalises them before each forward: the same sequence) and receive no
gradient while ``epoch < loss.freeze_prototypes_epochs`` (the original's
``freeze_prototypes_niters``, counted in epochs as solo-learn's ``freeze_prototypes_epochs``).
Queue (``loss.queue_size`` > 0): from epoch ``loss.epoch_queue_starts`` the large crops'
embeddings fill a per-rank FIFO of ``queue_size / world_size`` rows (the original's split);
once full, its prototype scores join the Sinkhorn input and the codes of the batch are kept.
The queue is a buffer filled at the step's commit, so checkpoints hold it. Projector as
solo-learn ``solo/methods/swav.py`` / the original's ``projection_head``: Linear-BN-ReLU-Linear.

Deliberate differences: solo-learn re-parametrises the prototypes with ``weight_norm`` (gradient
through the normalisation); we follow the authors. No online classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain import distributed
from pretrain.heads import linear_mlp
from pretrain.losses.priors import PRIOR_DEFAULTS, check_prior_config, prior_from_config
from pretrain.losses.swav import sinkhorn_codes, swapped_prediction_loss
from pretrain.methods import register_method
from pretrain.methods.base import Method
from resa_core.errors import UserError

CROPS_FOR_ASSIGN = (0, 1)  # main_swav.py --crops_for_assign default: the two large crops


@register_method("swav")
class SwAV(Method):
    # main_swav.py defaults (--temperature 0.1, --epsilon 0.05, --sinkhorn_iterations 3, --nmb_prototypes 3000,
    # --queue_length 0, --epoch_queue_starts 15); freeze 1 epoch: solo-learn solo/methods/swav.py default
    loss_defaults = {"temperature": 0.1, "sinkhorn_eps": 0.05, "sinkhorn_iters": 3, "num_prototypes": 3000,
                     "queue_size": 0, "epoch_queue_starts": 15, "freeze_prototypes_epochs": 1,
                     **PRIOR_DEFAULTS}  # the codes' prototype marginal (pretrain.losses.swav, docs/priors.md)
    default_views = "symmetric"
    supports_multicrop = True

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        check_prior_config(config["loss"], source)
        queue, batch = config["loss"]["queue_size"], config["optim"]["batch_size"]
        if queue < 0 or queue % batch:
            raise UserError(f"{source}: loss.queue_size = {queue} must be 0 or a multiple of "
                            f"optim.batch_size = {batch}")

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, loss_cfg = config["model"], config["loss"]
        out_dim = model_cfg["projector_out_dim"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"], out_dim, 2,
                                    hidden_bn=True)
        self.prototypes = nn.Linear(out_dim, loss_cfg["num_prototypes"], bias=False)
        self.normalize_prototypes()
        self.loss_cfg = dict(loss_cfg)
        self.prior = prior_from_config(loss_cfg, loss_cfg["num_prototypes"])  # None: uniform (the original)
        local_queue = loss_cfg["queue_size"] // distributed.world_size()
        self.register_buffer("queue", torch.zeros(len(CROPS_FOR_ASSIGN), local_queue, out_dim))
        self.register_buffer("queue_rows", torch.zeros((), dtype=torch.long))  # rows filled so far
        self._pending: torch.Tensor | None = None

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def queue_active(self) -> bool:
        return self.queue.shape[1] > 0 and self.epoch >= self.loss_cfg["epoch_queue_starts"]

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        cfg, batch = self.loss_cfg, views[0].shape[0]
        z = [F.normalize(self.projector(self.encoder(v)), dim=1) for v in views]
        scores = [self.prototypes(e) for e in z]
        codes = []
        use_queue = self.queue_active() and int(self.queue_rows) >= self.queue.shape[1]
        with torch.no_grad():
            for i, crop in enumerate(CROPS_FOR_ASSIGN):
                out = scores[crop].detach()
                if use_queue:
                    queue_scores = self.queue[i] @ self.prototypes.weight.detach().T
                    out = torch.cat((queue_scores.to(out.dtype), out))
                codes.append(sinkhorn_codes(out, cfg["sinkhorn_eps"], cfg["sinkhorn_iters"], self.prior)[-batch:])
        self._pending = torch.stack([z[c].detach() for c in CROPS_FOR_ASSIGN]) if self.queue_active() else None
        loss = swapped_prediction_loss(scores, codes, CROPS_FOR_ASSIGN, cfg["temperature"])
        return loss, {"queue_used": float(use_queue)} if self.queue.shape[1] else {}

    def before_optimizer_step(self) -> None:
        """The original's ``p.grad = None`` for the prototypes while frozen (the optimizer skips them)."""
        if self.epoch < self.loss_cfg["freeze_prototypes_epochs"]:
            self.prototypes.weight.grad = None

    @torch.no_grad()
    def after_step(self, progress: float) -> dict:
        self.normalize_prototypes()
        if self._pending is not None:
            batch = self._pending.shape[1]
            self.queue[:, batch:] = self.queue[:, :-batch].clone()
            self.queue[:, :batch] = self._pending.to(self.queue.dtype)
            self.queue_rows += batch
            self._pending = None
        return super().after_step(progress)
