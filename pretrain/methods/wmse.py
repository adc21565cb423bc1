"""W-MSE (Ermolov et al., ICML 2021): normalised MSE between Cholesky-whitened embeddings.

Loss: Eqs. 3-5, :func:`pretrain.losses.whitening.wmse_loss`, a transcription of
htdt/self-supervised ``methods/w_mse.py::WMSE.forward``: ``loss.w_iter`` random partitions of
the batch into sub-batches of ``loss.w_size``, each view of each sub-batch whitened on its own
(no running statistics), normalised MSE over all view pairs. Projector as htdt ``model.py``
``get_head`` and solo-learn ``solo/methods/wmse.py``: Linear-BN-ReLU-Linear. Views: symmetric
(solo-learn ``scripts/pretrain/cifar/wmse.yaml`` lists one augmentation for both crops).

DDP: the embeddings of the global batch are gathered with gradient and the partitions are
drawn from a generator seeded by ``(seed, step)``, identical on every rank, so N ranks compute
the single-process loss of the global batch (the original is single-GPU; solo-learn whitens
per-rank sub-batches). The step counter is a buffer, so a resumed run draws what the
uninterrupted run would have. Deliberate difference: no online linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from pretrain import distributed
from pretrain.heads import linear_mlp
from pretrain.losses.whitening import wmse_loss
from pretrain.methods import register_method
from pretrain.methods.base import Method
from resa_core.errors import UserError


class StepSeededDraws(Method):
    """Random draws of a whitening method from a generator seeded by ``(seed, step)``, equal on all ranks."""

    def setup_draws(self, config: dict) -> None:
        self.seed = config["seed"]
        self.register_buffer("draw_step", torch.zeros((), dtype=torch.long))

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.draw_step))

    @torch.no_grad()
    def after_step(self, progress: float) -> dict:
        self.draw_step += 1
        return super().after_step(progress)


def check_sub_batches(config: dict, source: str) -> None:
    batch, w_size = config["optim"]["batch_size"], config["loss"]["w_size"]
    if w_size < 2 or batch % w_size:
        raise UserError(f"{source}: loss.w_size = {w_size} must be >= 2 and divide optim.batch_size = {batch}")


@register_method("wmse")
class WMSE(StepSeededDraws):
    # htdt cfg.py: --w_eps 0, --w_iter 1, normalised MSE (--norm); w_size: solo-learn cifar/wmse.yaml whitening_size
    loss_defaults = {"w_size": 128, "w_iter": 1, "w_eps": 0.0, "normalize": True}
    default_views = "symmetric"
    supports_multicrop = True  # htdt --num_samples: every pair of views

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        check_sub_batches(config, source)
        if config["loss"]["w_size"] <= config["model"]["projector_out_dim"]:
            raise UserError(f"{source}: loss.w_size = {config['loss']['w_size']} must exceed model.projector_out_dim "
                            f"= {config['model']['projector_out_dim']} (a sub-batch covariance must be full rank)")

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, loss_cfg = config["model"], config["loss"]
        self.encoder = encoder
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"],
                                    model_cfg["projector_out_dim"], 2, hidden_bn=True)
        self.w_size, self.w_iter = loss_cfg["w_size"], loss_cfg["w_iter"]
        self.w_eps, self.normalize = loss_cfg["w_eps"], loss_cfg["normalize"]
        self.setup_draws(config)

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        z = [distributed.gather(self.projector(self.encoder(v))) for v in views]
        g = self.generator()
        perms = [torch.randperm(z[0].shape[0], generator=g).to(z[0].device) for _ in range(self.w_iter)]
        with torch.autocast(z[0].device.type, enabled=False):  # Cholesky in fp32 at least
            z = [x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in z]
            return wmse_loss(z, perms, self.w_size, self.w_eps, self.normalize), {}
