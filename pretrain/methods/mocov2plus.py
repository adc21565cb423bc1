"""MoCo v2+ (Chen et al. 2020, "Improved baselines"; solo-learn's symmetric variant).

Loss: InfoNCE of He et al. 2020 (MoCo, Eq. 1) against a queue of past momentum keys,
symmetrised over the two views, :func:`pretrain.losses.moco.moco_queue_infonce` — the
transcription of solo-learn ``solo/losses/mocov2plus.py`` and ``solo/methods/mocov2plus.py::
training_step`` (one queue per view: ``q1`` against ``queue[1]`` with key ``k2`` and vice versa;
the queue holds the keys gathered from every rank). The authors' facebookresearch/moco
(``moco/builder.py``) is the asymmetric v2: one query view, one queue. Projector and momentum
projector Linear-ReLU-Linear; queue 65,536 (solo-learn's default and ImageNet-100 value; its
CIFAR config uses 32,768), momentum 0.99 -> 0.999 (cosine), τ 0.2.

Deliberate differences: the queue is updated at the step's commit (after the optimizer step,
with the keys computed in the forward), so a pre-empted checkpoint never holds a queue one step
ahead of its weights — the values are solo-learn's; no online linear classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain import distributed
from pretrain.heads import linear_mlp
from pretrain.losses.moco import moco_queue_infonce
from pretrain.methods import register_method
from pretrain.methods.base import Method
from resa_core.errors import UserError


@register_method("mocov2plus")
class MoCoV2Plus(Method):
    # solo-learn solo/methods/mocov2plus.py: queue_size default 65536; scripts/pretrain/*/mocov2plus.yaml τ 0.2
    loss_defaults = {"temperature": 0.2, "queue_size": 65536}
    default_views = "symmetric"
    momentum_pairs = (("encoder", "momentum_encoder"), ("projector", "momentum_projector"))

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        if config["loss"]["queue_size"] % config["optim"]["batch_size"]:
            raise UserError(f"{source}: loss.queue_size {config['loss']['queue_size']} is not a multiple of "
                            f"optim.batch_size {config['optim']['batch_size']} (solo-learn asserts the same)")

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, loss_cfg = config["model"], config["loss"]
        self.encoder = encoder
        out_dim = model_cfg["projector_out_dim"]
        self.projector = linear_mlp(encoder.feature_dim, model_cfg["projector_hidden_dim"], out_dim, 2,
                                    hidden_bn=False)
        self.setup_momentum(config)
        self.temperature, self.queue_size = loss_cfg["temperature"], loss_cfg["queue_size"]
        self.register_buffer("queue", F.normalize(torch.randn(2, out_dim, self.queue_size), dim=1))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        self._pending_keys = None

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, dict]:
        q1, q2 = (F.normalize(self.projector(self.encoder(v)), dim=-1) for v in (view1, view2))
        with torch.no_grad():
            k1, k2 = (F.normalize(self.momentum_projector(self.momentum_encoder(v)), dim=-1) for v in (view1, view2))
        queue = self.queue.clone().detach()
        loss = (moco_queue_infonce(q1, k2, queue[1], self.temperature)
                + moco_queue_infonce(q2, k1, queue[0], self.temperature)) / 2
        self._pending_keys = torch.stack((distributed.gather(k1, with_grad=False),
                                          distributed.gather(k2, with_grad=False)))
        return loss, {}

    @torch.no_grad()
    def after_step(self, progress: float) -> dict:
        """Enqueue this step's keys (solo-learn ``_dequeue_and_enqueue``), then the EMA."""
        if self._pending_keys is not None:
            keys, ptr = self._pending_keys, int(self.queue_ptr)
            self.queue[:, :, ptr:ptr + keys.shape[1]] = keys.permute(0, 2, 1).to(self.queue.dtype)
            self.queue_ptr[0] = (ptr + keys.shape[1]) % self.queue_size
            self._pending_keys = None
        return super().after_step(progress)
