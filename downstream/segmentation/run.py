"""One segmentation run: resolve the mmseg config, check inputs, train in mmengine, write the record.

``SegRun.prepare`` does everything that can fail on bad input before any training (backbone
file and arch, overrides, data layout, backbone keys), so such a mistake costs seconds and
writes nothing but the work dir's converted backbone.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from mmengine.config import Config

from converters import Backbone, read_backbone, write_backbone
from converters.safe_load import load_torch
from downstream.record import build_record, record_path
from downstream.segmentation.backbone_check import build_backbone, check_backbone_keys
from downstream.segmentation.data_layout import check_layout, set_data_root
from downstream.segmentation.hooks import SegRunHook
from downstream.segmentation.norm import replace_syncbn
from downstream.segmentation.overrides import apply_overrides
from downstream.segmentation.resume import SafeResumeRunner
from downstream.segmentation.scaling import Scaling, apply_scaling, keep_total_batch
from downstream.segmentation.tasks import SegTask
from resa_core.atomic import sha256_json, write_json_atomic
from resa_core.errors import UserError

log = logging.getLogger("downstream.segmentation")
METRICS = ("mIoU", "mAcc", "aAcc")  # what mmseg's IoUMetric(iou_metrics=['mIoU']) reports, in percent
BACKBONE_FILE = "backbone_mmseg.pth"


def _rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))


@dataclass
class SegRun:
    task: SegTask
    args: object
    backbone: Backbone
    cfg: Config
    notes: list[str] = field(default_factory=list)
    config_for_record: dict = field(default_factory=dict)
    backbone_path: Path | None = None
    state_dict: dict = field(default_factory=dict)
    runner: SafeResumeRunner | None = None
    hook: SegRunHook | None = None

    @classmethod
    def prepare(cls, args, task: SegTask, launcher: str, world_size: int) -> SegRun:
        backbone = read_backbone(args.weights)
        if backbone.arch != task.arch:
            raise UserError(
                f"{args.weights}: task {task.name} needs a {task.arch} backbone, this file holds {backbone.arch}"
            )
        cfg = Config.fromfile(str(task.config_path))
        run = cls(task, args, backbone, cfg)
        set_data_root(cfg, Path(args.data_root) / task.subdir)
        if world_size == 1:
            count = replace_syncbn(cfg.model)
            if count:
                run.note(f"single process: {count} SyncBN norm configs replaced by BN (SyncBN needs a distributed run)",
                         warn=True)
        scaling = Scaling(task.reference_gpus, world_size)
        if args.linear_scaling:
            run.note(apply_scaling(cfg, scaling), warn=True)
        else:
            run.note(keep_total_batch(cfg, scaling))
        overrides = apply_overrides(cfg, args.overrides)
        cfg.randomness = dict(seed=args.seed)
        if launcher != "none" and not _cuda():
            cfg.env_cfg.dist_cfg = dict(backend="gloo")
        run.config_for_record = {"task": task.name, "config_file": str(task.config_path.name),
                                 "overrides": overrides, "world_size": world_size, "notes": list(run.notes),
                                 "mmseg": _plain(cfg)}
        cfg.work_dir = str(run.work_dir)  # keyed by the config's hash: resume only an identical config
        cfg.launcher = launcher
        cfg.resume = True  # mmengine auto-resume: the work dir's last checkpoint, if any
        cfg.load_from = None
        check_layout(cfg, task.layout)
        run.backbone_path = run.work_dir / BACKBONE_FILE
        if _rank() == 0 or not run.backbone_path.exists():
            write_backbone(backbone, run.backbone_path, "mmseg", force=True)
        cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=str(run.backbone_path))
        run.state_dict = load_torch(run.backbone_path)["state_dict"]
        count = check_backbone_keys(build_backbone(cfg.model.backbone), run.state_dict, args.weights)
        run.note(f"backbone {args.weights}: {count} tensors, 0 missing, 0 unexpected keys")
        return run

    @property
    def work_dir(self) -> Path:
        """``<run>/work_dirs/<task>/<backbone-sha8>/seed<S>-<config-sha8>``: mmengine auto-resumes from the
        last checkpoint in it, so a rerun with other overrides (another config hash) starts fresh."""
        if not self.config_for_record:
            raise RuntimeError("the work dir is known once the config is resolved")
        sha8, config8 = self.backbone.source_sha256[:8], sha256_json(self.config_for_record)[:8]
        return Path(self.args.run_dir) / "work_dirs" / self.task.name / sha8 / f"seed{self.args.seed}-{config8}"

    def note(self, message: str | None, warn: bool = False) -> None:
        """Remember ``message`` for mmengine's log (written once the Runner exists); warn now if asked."""
        if message is None:
            return
        self.notes.append(message)
        if warn:
            warnings.warn(message, stacklevel=2)
        log.info(message)

    def train_and_evaluate(self) -> dict[str, float]:
        self.runner = SafeResumeRunner.from_cfg(self.cfg)
        for message in self.notes:
            self.runner.logger.info(message)
        self.hook = SegRunHook(self.state_dict, self.args.weights, self.args.eval_at_init)
        self.runner.register_hook(self.hook)
        self.runner.train()
        final = self.hook.last_metrics
        if final is None:  # resumed a finished run: nothing trained, so nothing was validated
            final = dict(self.runner.val_loop.run())
        # mmseg rounds to 2 decimals in float32; round again so 31.18 is not stored as 31.18000030517578
        metrics = {name: round(float(final[name]), 2) for name in METRICS}
        if self.hook.init_metrics is not None:
            metrics.update({f"init_{name}": round(float(self.hook.init_metrics[name]), 2) for name in METRICS})
        return metrics

    def provenance(self) -> dict:
        backbone = self.backbone
        return {
            "name": self.args.name or backbone.method or Path(self.args.weights).stem,
            "path": str(self.args.weights), "sha256": backbone.source_sha256, "method": backbone.method,
            "arch": backbone.arch, "pretrain_epochs": backbone.pretrain_epochs,
        }

    def write_record(self, start_time: str, metrics: dict | None = None, error: str | None = None) -> Path | None:
        """Write the record (rank 0 only); returns its path, None on other ranks."""
        if _rank() != 0:
            return None
        path = record_path(self.args.run_dir, self.task.name, self.task.dataset, self.backbone.source_sha256,
                           self.args.seed)
        config = dict(self.config_for_record)
        if self.hook is not None and self.hook.resumed_from_iter is not None:
            config["resumed_from_iter"] = self.hook.resumed_from_iter
        record = build_record(self.task.name, self.task.dataset, self.args.seed, self.provenance(), config,
                              start_time, metrics=metrics, error=error)
        write_json_atomic(path, record)
        return path


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _plain(cfg: Config) -> dict:
    """The resolved config as JSON data, without the run-specific paths (so its hash names the protocol)."""
    data = json.loads(json.dumps(cfg.to_dict(), default=str))
    for key in ("work_dir", "launcher", "resume", "load_from"):
        data.pop(key, None)
    return data
