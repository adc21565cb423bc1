"""What every method declares to the engine, with the defaults most methods share.

A method is an ``nn.Module`` built from ``(config, encoder)``. Beyond ``forward(*views) ->
(loss, logs)`` (views: the two large views, then any small multi-crop views; the loss is this
rank's, DDP averages the gradients) it declares, as class attributes and hooks:

* ``loss_defaults``: its own config section ``loss`` (schema and defaults; an unknown key there
  is an error naming the method's keys), checked further by :meth:`check_config`;
* ``default_views``: its augmentation pair, used when ``augment.views`` is ``auto``
  (``symmetric``: two standard views as SimCLR; ``asymmetric``: view 2 with its own blur and
  solarization probabilities as BYOL; ``weak_standard``: ReSA's weak + standard views), as
  solo-learn's ``scripts/pretrain/*/augmentations/*.yaml``;
* ``supports_multicrop``: whether ``forward`` takes small crops after the two large views;
* ``param_groups()``: optimizer groups (``static_lr: True`` keeps a group at the peak lr, as
  solo-learn's ``learnable_params``; ``optim.exclude_bias_n_norm_wd`` splits them further);
* ``momentum_pairs``: ``(online, teacher)`` attribute names updated by EMA in
  :meth:`after_step` with the cosine momentum schedule of ``model.momentum_base/final``
  (BYOL's; solo-learn ``solo/utils/momentum.py::MomentumUpdater``); a teacher encoder named
  ``momentum_encoder`` is exported by the checkpoint (:meth:`transfer_encoders`), which the
  converters take;
* ``before_optimizer_step()``: gradient surgery after backward (DINO's frozen last layer);
* ``after_step(progress)``: the step's commit (EMA, queues, centres), run with the stop
  signals blocked, so a checkpoint always holds a step boundary.

``self.epoch`` is set by the engine before every step (DINO's per-epoch schedules), and
``self.batch_indices``: the dataset positions (0 .. N-1) of this rank's samples in the batch, for
per-sample state (DeepCluster-v2's memory bank). A method with such state sizes it in
:meth:`bind_data` (called once the dataset is known, before any resume) and, with
``fills_memory``, sees epoch 0's batches once through :meth:`init_memory` before the first step.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def cosine_momentum(base: float, final: float, progress: float) -> float:
    """BYOL's schedule: ``final - (final - base) * (cos(pi * progress) + 1) / 2``."""
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2


class Method(nn.Module):
    loss_defaults: dict = {}
    default_views: str = "symmetric"
    supports_multicrop: bool = False  # may take augment.num_small_crops > 0 small views after the two large ones
    momentum_pairs: tuple[tuple[str, str], ...] = ()
    momentum: float = 0.0
    epoch: int = 0
    batch_indices: torch.Tensor | None = None
    fills_memory: bool = False  # init_memory(*views) over epoch 0's batches before the first step

    @classmethod
    def check_config(cls, config: dict, source: str) -> None:
        """Raise :class:`resa_core.errors.UserError` for a config this method cannot run."""

    def setup_momentum(self, config: dict) -> None:
        """Build a frozen copy ``momentum_<name>`` of each online module named in ``momentum_pairs``."""
        self.momentum_base = config["model"]["momentum_base"]
        self.momentum_final = config["model"]["momentum_final"]
        self.momentum = self.momentum_base
        for online, target in self.momentum_pairs:
            setattr(self, target, copy.deepcopy(getattr(self, online)).requires_grad_(False))

    def bind_data(self, num_samples: int, samples_per_epoch: int) -> None:
        """The dataset size and the samples one epoch trains on (steps x global batch)."""

    def init_memory(self, *views: torch.Tensor) -> None:
        """One batch of epoch 0 (``batch_indices`` set), without gradient, before training (``fills_memory``)."""

    def param_groups(self) -> list[dict]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def before_optimizer_step(self) -> None:
        """Called after backward (gradients unscaled), before the optimizer step."""

    @torch.no_grad()
    def after_step(self, progress: float) -> dict:
        """EMA of the teacher parameters with the current momentum, then advance the schedule.

        Parameters only (BN running statistics of the teacher are its own, as solo-learn's
        ``MomentumUpdater.update`` and the authors' code of every method here).
        """
        if not self.momentum_pairs:
            return {}
        m = self.momentum
        online = [p for name, _ in self.momentum_pairs for p in getattr(self, name).parameters()]
        target = [p for _, name in self.momentum_pairs for p in getattr(self, name).parameters()]
        torch._foreach_mul_(target, m)
        torch._foreach_add_(target, [p.detach() for p in online], alpha=1 - m)
        self.momentum = cosine_momentum(self.momentum_base, self.momentum_final, progress)
        return {"momentum": m}

    def transfer_encoders(self) -> dict[str, nn.Module]:
        """The encoders a checkpoint exports (DESIGN.md contract 1): the teacher too where there is one."""
        encoders = {"encoder": self.encoder}
        if hasattr(self, "momentum_encoder"):
            encoders["momentum_encoder"] = self.momentum_encoder
        return encoders
