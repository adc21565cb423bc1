"""Linear lr / iteration scaling when fewer GPUs run a config than it was tuned for.

The linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD", §2.1): with the
per-GPU batch fixed, a total batch ``k`` times smaller takes an lr ``k`` times smaller and ``k``
times more iterations, so the run sees the same number of samples. Every iteration count of the
schedule scales with it: ``train_cfg.max_iters``/``val_interval``, the checkpoint interval and
each iteration-based ``param_scheduler``'s ``begin``/``end``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


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
        if scheduler.get("by_epoch", True):
            continue
        for key in ("begin", "end"):
            if key in scheduler:
                scheduler[key] = round(scheduler[key] / factor)
    return scaling.describe(lr_before, optimizer.lr, iters_before, cfg.train_cfg.max_iters)
