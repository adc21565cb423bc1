"""The batch of a run on a GPU count other than the config's reference.

Default: the reference **total** batch (``reference_gpus`` x the config's per-GPU
``train_dataloader.batch_size``: 4x4 for the VOC/ADE20K ResNet tasks, 4x2 Cityscapes, 8x2 the
ViT, as the mmseg config names say) is kept, split over the GPUs in use, and lr and schedule stay
as written: the protocol is unchanged (SyncBN, or BN in one process, normalises over the same
images). :func:`keep_total_batch` does that; a total that does not split evenly is an error.

On request only (``--linear-scaling``), :func:`apply_scaling` keeps the per-GPU batch and applies
the linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD", §2.1): a total
batch ``k`` times smaller takes an lr ``k`` times smaller and ``k`` times more iterations, so
the run sees the same number of samples. Every iteration count of the schedule scales with it
(``train_cfg.max_iters``/``val_interval``, the checkpoint interval, each iteration-based
``param_scheduler``'s ``begin``/``end``), and so does the lr floor of the poly decay
(``PolyLR.eta_min``, 1e-4 in mmseg's ``schedule_20k/40k/160k.py``), which is an absolute lr.
That run deviates from the protocol; the returned line goes into the record's notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from resa_core.errors import UserError


@dataclass(frozen=True)
class Scaling:
    reference_gpus: int
    world_size: int

    @property
    def factor(self) -> Fraction:
        """Total batch of this run over the reference total batch (per-GPU batch unchanged)."""
        return Fraction(self.world_size, self.reference_gpus)

    def describe(self, lr_before: float, lr_after: float, iters_before: int, iters_after: int) -> str:
        return (
            f"linear scaling for {self.world_size} GPU(s) instead of the reference {self.reference_gpus}: "
            f"lr {lr_before:g} -> {lr_after:g}, iterations {iters_before} -> {iters_after}"
        )


def _iters(value: int, factor: Fraction) -> int:
    return max(1, round(value / factor))


def keep_total_batch(cfg, scaling: Scaling) -> str | None:
    """Set the per-GPU batch so ``world_size`` GPUs see the reference total batch; returns the log line or None."""
    per_gpu = cfg.train_dataloader.batch_size
    total = scaling.reference_gpus * per_gpu
    if scaling.world_size == scaling.reference_gpus:
        return None
    if total % scaling.world_size:
        raise UserError(f"the reference total batch of {total} images ({scaling.reference_gpus} GPUs x {per_gpu}) "
                        f"cannot be split over {scaling.world_size} GPUs; use a GPU count that divides it, "
                        "or --linear-scaling")
    cfg.train_dataloader.batch_size = total // scaling.world_size
    return (f"reference total batch kept: {total} images per iteration, {total // scaling.world_size} per GPU "
            f"on {scaling.world_size} GPU(s) (reference {scaling.reference_gpus} x {per_gpu}); lr and schedule "
            "as written")


def apply_scaling(cfg, scaling: Scaling) -> str | None:
    """Scale ``cfg`` (an mmengine Config) in place; returns the log line, or None when nothing changed."""
    factor = scaling.factor
    if factor == 1:
        return None
    optimizer = cfg.optim_wrapper.optimizer
    lr_before, iters_before = optimizer.lr, cfg.train_cfg.max_iters
    optimizer.lr = float(lr_before * factor)
    cfg.train_cfg.max_iters = _iters(iters_before, factor)
    if "val_interval" in cfg.train_cfg:
        cfg.train_cfg.val_interval = _iters(cfg.train_cfg.val_interval, factor)
    checkpoint = cfg.default_hooks.get("checkpoint")
    if checkpoint is not None and "interval" in checkpoint:
        checkpoint.interval = _iters(checkpoint.interval, factor)
    schedulers = cfg.param_scheduler if isinstance(cfg.param_scheduler, list) else [cfg.param_scheduler]
    for scheduler in schedulers:
        if "eta_min" in scheduler:
            scheduler.eta_min = float(scheduler.eta_min * factor)
        if scheduler.get("by_epoch", True):
            continue
        for key in ("begin", "end"):
            if key in scheduler:
                scheduler[key] = round(scheduler[key] / factor)
    return scaling.describe(lr_before, optimizer.lr, iters_before, cfg.train_cfg.max_iters)
