"""The resolved Detectron2 config of one run: task YAML + ``key=value`` overrides + run facts.

Overrides use Detectron2's own ``CfgNode.merge_from_list``, which refuses an unknown key (a typo
is an error, not a silently ignored key, DESIGN.md) and a value of the wrong type; both become
one-line :class:`UserError`s. Then, logged:

* ``MODEL.DEVICE`` is ``cpu`` where CUDA is not available;
* in a single process SyncBN / naiveSyncBN (MoCo's norms) become BN: there is nothing to
  synchronise, and ``nn.SyncBatchNorm`` needs a process group;
* ``DefaultTrainer.auto_scale_workers`` scales IMS_PER_BATCH / BASE_LR (linearly) and
  MAX_ITER / STEPS / WARMUP_ITERS / CHECKPOINT_PERIOD (inversely) from the configs'
  ``SOLVER.REFERENCE_WORLD_SIZE`` of 8 GPUs to the world size in use (Goyal et al. linear scaling,
  Detectron2's implementation).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from detectron2.config import CfgNode, get_cfg
from detectron2.engine import DefaultTrainer

from downstream.detection.tasks import DetectionTask
from resa_core.errors import UserError

log = logging.getLogger("downstream.detection")

SYNC_NORMS = ("SyncBN", "naiveSyncBN")
# Our one key beyond Detectron2's: iterations between loss logs (DefaultTrainer's PeriodicWriter uses 20).
LOG_PERIOD = 20


def _merge_overrides(cfg: CfgNode, overrides: Sequence[str]) -> None:
    pairs = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r}: expected KEY=VALUE (e.g. SOLVER.MAX_ITER=100)")
        pairs += [key, value]
    try:
        cfg.merge_from_list(pairs)
    except (KeyError, ValueError, AssertionError, TypeError) as err:
        raise UserError(f"bad Detectron2 override: {' '.join(str(err).split())}") from None


def _single_process_norms(cfg: CfgNode) -> None:
    for key in ("RESNETS", "FPN"):
        node = cfg.MODEL.get(key)
        if node is not None and node.NORM in SYNC_NORMS:
            log.warning("MODEL.%s.NORM=%s falls back to BN: a single process has nothing to synchronise",
                        key, node.NORM)
            node.NORM = "BN"


def build_cfg(task: DetectionTask, overrides: Sequence[str], world_size: int, seed: int, output_dir: str) -> CfgNode:
    """The frozen config for ``task`` on ``world_size`` processes, with every adjustment logged."""
    import downstream.detection.roi_heads  # noqa: F401  (registers Res5ROIHeadsExtraNorm)

    cfg = get_cfg()
    cfg.LOG_PERIOD = LOG_PERIOD
    cfg.merge_from_file(str(task.config_file))
    _merge_overrides(cfg, overrides)
    if cfg.MODEL.WEIGHTS:
        raise UserError("MODEL.WEIGHTS must stay empty: pass the backbone with --weights")
    if not torch.cuda.is_available() and cfg.MODEL.DEVICE != "cpu":
        log.warning("CUDA is not available: MODEL.DEVICE=%s -> cpu", cfg.MODEL.DEVICE)
        cfg.MODEL.DEVICE = "cpu"
    if world_size == 1:
        _single_process_norms(cfg)
    reference = cfg.SOLVER.REFERENCE_WORLD_SIZE
    if reference and cfg.SOLVER.IMS_PER_BATCH % reference:
        raise UserError(f"SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} is not a multiple of "
                        f"SOLVER.REFERENCE_WORLD_SIZE={reference}")
    before = (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER, tuple(cfg.SOLVER.STEPS))
    cfg = DefaultTrainer.auto_scale_workers(cfg, world_size)
    after = (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER, tuple(cfg.SOLVER.STEPS))
    if after != before:
        log.warning("linear scaling from %d to %d processes: IMS_PER_BATCH/BASE_LR/MAX_ITER/STEPS %s -> %s",
                    reference, world_size, before, after)
    cfg.SEED = seed
    cfg.OUTPUT_DIR = output_dir
    cfg.freeze()
    return cfg
