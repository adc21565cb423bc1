"""mmengine hooks of a segmentation run: check the backbone loaded, evaluate at init, keep the metrics."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from downstream.segmentation.backbone_check import check_backbone_loaded


class SegRunHook(Hook):
    """Collects validation metrics; before the first iteration checks the backbone and can evaluate.

    ``before_train`` runs after mmengine's ``init_weights`` and resume; at iteration 0 (a fresh
    run) the backbone must hold the converted file's tensors. With ``eval_at_init`` the model is
    evaluated there too, so a record can show what fine-tuning changed (``init_*`` metrics).
    """

    priority = "VERY_LOW"

    def __init__(self, state_dict: Mapping[str, torch.Tensor], path: str, eval_at_init: bool):
        self.state_dict, self.path, self.eval_at_init = state_dict, path, eval_at_init
        self.init_metrics: dict | None = None
        self.last_metrics: dict | None = None
        self.resumed_from_iter: int | None = None

    def before_train(self, runner) -> None:
        if runner.iter > 0:
            self.resumed_from_iter = runner.iter
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        check_backbone_loaded(model.backbone, self.state_dict, self.path)
        if self.eval_at_init:
            self.init_metrics = dict(runner.val_loop.run())

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.last_metrics = dict(metrics or {})
