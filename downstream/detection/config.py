"""The resolved Detectron2 config of one run: task YAML + ``key=value`` overrides + run facts.

Overrides use Detectron2's own ``CfgNode.merge_from_list``, which refuses an unknown key (a typo
is an error, not a silently ignored key, DESIGN.md) and a value of the wrong type; both become
one-line :class:`UserError`s. Then, logged:

* ``MODEL.DEVICE`` is ``cpu`` where CUDA is not available;
* in a single process SyncBN / naiveSyncBN (MoCo's norms) become BN: there is nothing to
  synchronise, and ``nn.SyncBatchNorm`` needs a process group; on CPU with several processes
  SyncBN becomes Detectron2's naiveSyncBN (``nn.SyncBatchNorm`` runs on GPUs only; with equal
  per-process batches both normalise over the same images);
* the batch. By default the reference **total** batch is kept on any process count
  (``SOLVER.IMS_PER_BATCH`` 16 = 8 GPUs x 2 images, the Detectron2 / MoCo configs): Detectron2's
  loader splits it over the processes, LR and schedule stay as written, and SyncBN normalises
  over the same 16 images, so the protocol is unchanged. ``SOLVER.REFERENCE_WORLD_SIZE`` is then
  set to 0 so ``DefaultTrainer.__init__``'s own ``auto_scale_workers`` call changes nothing.
  Only with ``linear_scaling`` does ``DefaultTrainer.auto_scale_workers`` keep the per-GPU batch
  and scale IMS_PER_BATCH / BASE_LR (linearly) and MAX_ITER / STEPS / WARMUP_ITERS /
  CHECKPOINT_PERIOD (inversely) to the world size (Goyal et al. linear scaling, Detectron2's
  implementation), and PreciseBN's ``NUM_ITER`` scales with the iterations so it still averages
  over as many images (Detectron2 ``config/defaults.py``: 200 iterations at the reference batch).
  That run deviates from the protocol; ``PROTOCOL_NOTES`` (in the record's config) says how.
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
# Our keys beyond Detectron2's: iterations between loss logs (DefaultTrainer's PeriodicWriter uses 20),
# and the run's deviations from the task's protocol (empty: none), which the record carries.
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


def _cpu_sync_norms(cfg: CfgNode) -> None:
    for key in ("RESNETS", "FPN"):
        node = cfg.MODEL.get(key)
        if node is not None and node.NORM == "SyncBN":
            log.warning("MODEL.%s.NORM=SyncBN -> naiveSyncBN: torch's SyncBatchNorm runs on GPUs only", key)
            node.NORM = "naiveSyncBN"


def _keep_total_batch(cfg: CfgNode, world_size: int) -> None:
    """The reference total batch on ``world_size`` processes (no deviation from the protocol)."""
    total = cfg.SOLVER.IMS_PER_BATCH
    if total % world_size:
        raise UserError(f"SOLVER.IMS_PER_BATCH={total} images cannot be split over {world_size} processes; "
                        "use a process count that divides it, or --linear-scaling")
    if world_size != cfg.SOLVER.REFERENCE_WORLD_SIZE:
        log.info("reference total batch kept: %d images per iteration, %d per process on %d process(es)",
                 total, total // world_size, world_size)
    cfg.SOLVER.REFERENCE_WORLD_SIZE = 0  # DefaultTrainer.__init__ re-runs auto_scale_workers: keep it a no-op


def _scale_linearly(cfg: CfgNode, world_size: int) -> tuple[CfgNode, list[str]]:
    """Detectron2's auto_scale_workers plus PreciseBN iterations; returns the config and its protocol notes."""
    reference = cfg.SOLVER.REFERENCE_WORLD_SIZE
    if not reference:
        raise UserError("--linear-scaling needs SOLVER.REFERENCE_WORLD_SIZE > 0 (the GPU count the config is for)")
    if cfg.SOLVER.IMS_PER_BATCH % reference:
        raise UserError(f"SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} is not a multiple of "
                        f"SOLVER.REFERENCE_WORLD_SIZE={reference}")
    before = (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER, tuple(cfg.SOLVER.STEPS))
    cfg = DefaultTrainer.auto_scale_workers(cfg, world_size)
    after = (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER, tuple(cfg.SOLVER.STEPS))
    if after == before:
        return cfg, []
    factor = world_size / reference
    cfg.TEST.PRECISE_BN.NUM_ITER = max(1, round(cfg.TEST.PRECISE_BN.NUM_ITER / factor))
    note = (f"linear scaling from {reference} to {world_size} processes (per-GPU batch kept): "
            f"IMS_PER_BATCH/BASE_LR/MAX_ITER/STEPS {before} -> {after}, PreciseBN "
            f"{cfg.TEST.PRECISE_BN.NUM_ITER} iterations; the protocol's total batch is {before[0]}")
    log.warning(note)
    return cfg, [note]


def build_cfg(task: DetectionTask, overrides: Sequence[str], world_size: int, seed: int, output_dir: str,
              linear_scaling: bool = False) -> CfgNode:
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
    elif cfg.MODEL.DEVICE == "cpu":
        _cpu_sync_norms(cfg)
    notes: list[str] = []
    if linear_scaling:
        cfg, notes = _scale_linearly(cfg, world_size)
    else:
        _keep_total_batch(cfg, world_size)
    cfg.PROTOCOL_NOTES = notes
    cfg.SEED = seed
    cfg.OUTPUT_DIR = output_dir
    cfg.freeze()
    return cfg
