"""DINO (Caron et al., ICCV 2021): self-distillation with a momentum teacher, centring and sharpening.

Loss: Eq. 1-2 of the paper — cross-entropy between the teacher's centred, sharpened softmax
(``τ_t`` with a linear warm-up from ``warmup_teacher_temperature`` over
``warmup_teacher_temperature_epochs``) on the two global crops and the student's softmax (``τ_s``)
on every other crop; the centre is an EMA (``center_momentum``) of the teacher outputs' mean over
the global batch — :mod:`pretrain.losses.dino`, a transcription of the authors'
facebookresearch/dino ``main_dino.py::DINOLoss``. Head as ``vision_transformer.py::DINOHead``
(= solo-learn ``solo/methods/dino.py::DINOHead``): 3-layer GELU MLP (hidden
``model.projector_hidden_dim``, bottleneck ``model.projector_out_dim``; BN only with
``use_bn_in_head``), L2 normalisation, a weight-normalised prototype layer (``num_prototypes``)
whose norm is frozen at 1 (``norm_last_layer``) and whose gradient is dropped during the first
``freeze_last_layer`` epochs. Multi-crop: ``augment.num_small_crops`` student-only crops.
Optional per-parameter gradient clipping of the encoder (``clip_grad``, solo-learn's
``dino_clip_gradients``). Momentum 0.9995 -> 1 cosine (solo-learn's ResNet-18 configs).

Deliberate differences: the weight norm is written out (``g * v / ||v||`` per prototype, keys
``weight_g``/``weight_v`` as torch's ``weight_norm``) rather than the deprecated hook; the centre
is updated at the step's commit with the batch centre of the forward (values as the reference);
no online linear classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.losses.dino import batch_center, dino_loss, teacher_temperature
from pretrain.methods import register_method
from pretrain.methods.base import Method


class L2Norm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1)


class NormedLinear(nn.Module):
    """Bias-free Linear with weight norm over each output row (torch ``weight_norm(dim=0)``)."""

    def __init__(self, in_dim: int, out_dim: int, freeze_norm: bool):
        super().__init__()
        self.weight_v = nn.Parameter(nn.Linear(in_dim, out_dim, bias=False).weight.detach().clone())
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not freeze_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_g * self.weight_v / self.weight_v.norm(dim=1, keepdim=True))


def dino_head(in_dim: int, hidden_dim: int, bottleneck_dim: int, num_prototypes: int, use_bn: bool,
              norm_last_layer: bool) -> nn.Sequential:
    """DINOHead with 3 layers: MLP (trunc-normal std 0.02, zero bias), L2 norm, prototypes."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(2):
        layers.append(nn.Linear(width, hidden_dim))
        if use_bn:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers.append(nn.GELU())
        width = hidden_dim
    layers.append(nn.Linear(width, bottleneck_dim))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.trunc_normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers, L2Norm(), NormedLinear(bottleneck_dim, num_prototypes, norm_last_layer))


@register_method("dino")
class DINO(Method):
    # solo-learn solo/methods/dino.py add_and_assert_specific_cfg defaults; num_prototypes 4096 from
    # scripts/pretrain/cifar/dino.yaml; centre momentum 0.9 from solo/losses/dino.py (= main_dino.py).
    loss_defaults = {"num_prototypes": 4096, "student_temperature": 0.1, "teacher_temperature": 0.07,
                     "warmup_teacher_temperature": 0.04, "warmup_teacher_temperature_epochs": 0,
                     "center_momentum": 0.9, "norm_last_layer": True, "use_bn_in_head": False,
                     "freeze_last_layer": 1, "clip_grad": 0.0}
    default_views = "asymmetric"  # solo-learn scripts/pretrain/*/dino.yaml: asymmetric.yaml
    supports_multicrop = True
    momentum_pairs = (("encoder", "momentum_encoder"), ("projector", "momentum_projector"))

    def __init__(self, config: dict, encoder: nn.Module):
        super().__init__()
        model_cfg, self.loss_cfg = config["model"], dict(config["loss"])
        self.epochs = config["epochs"]
        self.encoder = encoder
        self.projector = dino_head(encoder.feature_dim, model_cfg["projector_hidden_dim"],
                                   model_cfg["projector_out_dim"], self.loss_cfg["num_prototypes"],
                                   self.loss_cfg["use_bn_in_head"], self.loss_cfg["norm_last_layer"])
        self.setup_momentum(config)
        self.register_buffer("center", torch.zeros(1, self.loss_cfg["num_prototypes"]))
        self._pending_center = None

    def teacher_temperature(self) -> float:
        cfg = self.loss_cfg
        return teacher_temperature(self.epoch, cfg["warmup_teacher_temperature"], cfg["teacher_temperature"],
                                   cfg["warmup_teacher_temperature_epochs"], self.epochs)

    def forward(self, *views: torch.Tensor) -> tuple[torch.Tensor, dict]:
        student = torch.cat([self.projector(self.encoder(v)) for v in views])
        with torch.no_grad():
            teacher = torch.cat([self.momentum_projector(self.momentum_encoder(v)) for v in views[:2]])
        temp = self.teacher_temperature()
        loss = dino_loss(student, teacher, self.center, len(views), self.loss_cfg["student_temperature"], temp)
        half = teacher.dtype in (torch.float16, torch.bfloat16)
        self._pending_center = batch_center(teacher.float() if half else teacher)
        return loss, {"teacher_temperature": temp}

    def before_optimizer_step(self) -> None:
        """solo-learn ``on_after_backward``: clip the encoder's gradients, drop the prototypes' early on."""
        if self.loss_cfg["clip_grad"]:
            for p in self.encoder.parameters():
                if p.grad is not None:
                    clip_coef = self.loss_cfg["clip_grad"] / (p.grad.norm(2) + 1e-6)
                    if clip_coef < 1:
                        p.grad.mul_(clip_coef)
        if self.epoch < self.loss_cfg["freeze_last_layer"]:
            for p in self.projector[-1].parameters():
                p.grad = None

    @torch.no_grad()
    def after_step(self, progress: float) -> dict:
        """Centre EMA with this step's global-batch centre, then the teacher EMA."""
        if self._pending_center is not None:
            m = self.loss_cfg["center_momentum"]
            self.center.mul_(m).add_(self._pending_center.to(self.center.dtype), alpha=1 - m)
            self._pending_center = None
        return super().after_step(progress)
