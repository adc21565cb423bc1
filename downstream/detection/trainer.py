"""One Detectron2 training + evaluation run: moco ``detection/train_net.py``'s Trainer, and its metrics.

``Trainer`` is Detectron2's ``DefaultTrainer`` (hooks: LR schedule, checkpointing, PreciseBN,
evaluation at the end) with MoCo's evaluator choice, and writers without TensorBoard (a
CommonMetricPrinter and ``metrics.json``, which holds the losses every ``cfg.LOG_PERIOD``
iterations: 20 as DefaultTrainer, 1 for a per-iteration loss curve on CPU). ``train``
resumes from Detectron2's last checkpoint in ``OUTPUT_DIR`` when asked and one exists;
otherwise it starts from the given backbone (or from scratch).

Metrics exist on the main process only: Detectron2's evaluators gather every process's
predictions there and return ``{}`` elsewhere (``COCOEvaluator.evaluate`` /
``PascalVOCDetectionEvaluator.evaluate``: ``if not comm.is_main_process(): return {}``), so
``train`` reads and checks them on the main process and returns ``None`` on the others.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from detectron2.data import MetadataCatalog
from detectron2.engine import DefaultTrainer, hooks
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator
from detectron2.utils import comm
from detectron2.utils.events import CommonMetricPrinter, JSONWriter

from converters import Backbone
from downstream.detection.weights import load_into
from resa_core.errors import UserError

log = logging.getLogger("downstream.detection")

# The summary numbers of COCOEvaluator ("bbox"/"segm") and PascalVOCDetectionEvaluator ("bbox");
# per-category APs are left out of the record.
SUMMARY_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


class Trainer(DefaultTrainer):
    """DefaultTrainer whose loss log is written every ``cfg.LOG_PERIOD`` iterations, as the median over them."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        """As moco detection/train_net.py: COCO metrics for COCO sets, VOC 2007 11-point AP for VOC."""
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
        if "coco" in dataset_name or MetadataCatalog.get(dataset_name).get("evaluator_type") == "coco":
            return COCOEvaluator(dataset_name, output_dir=output_folder)
        return PascalVOCDetectionEvaluator(dataset_name)

    def build_writers(self):
        period = self.cfg.LOG_PERIOD
        return [CommonMetricPrinter(self.max_iter, window_size=period),
                JSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json"), window_size=period)]

    def build_hooks(self):
        return [hooks.PeriodicWriter(self.build_writers(), period=self.cfg.LOG_PERIOD)
                if isinstance(hook, hooks.PeriodicWriter) else hook for hook in super().build_hooks()]


# pycocotools cocoeval.py Params.setDetParams: areaRng small [0, 32^2), medium [32^2, 96^2), large [96^2, inf).
AREA_RANGES = {"APs": (0.0, 32.0**2), "APm": (32.0**2, 96.0**2), "APl": (96.0**2, math.inf)}


def empty_area_ranges(dataset_name: str) -> frozenset[str]:
    """The area-range APs (``APs/APm/APl``) a COCO-format test set cannot have: no non-crowd ground truth of that size.

    COCOEvaluator reports NaN for them whatever the model does (e.g. no "large" object fits a 96 px
    canvas); any other NaN is a failure. Read from the set's COCO json, as the evaluator reads areas.
    """
    from detectron2.data import MetadataCatalog

    json_file = getattr(MetadataCatalog.get(dataset_name), "json_file", None)
    if not json_file:
        return frozenset()
    with open(json_file) as handle:
        annotations = json.load(handle).get("annotations", [])
    areas = [ann["area"] for ann in annotations if not ann.get("iscrowd", 0) and "area" in ann]
    return frozenset(name for name, (low, high) in AREA_RANGES.items() if not any(low <= a < high for a in areas))


def flatten_metrics(results: dict, undefined: frozenset[str] = frozenset()) -> dict[str, float]:
    """``{"bbox": {"AP": ..}, "segm": {..}}`` -> ``{"bbox_AP": .., "segm_AP": ..}``.

    Every summary number the evaluator reports must be finite: COCOEvaluator writes NaN for an AP
    it could not compute (no detections, or no ground truth of a size), and a record that silently
    lacks that column would look complete. UserError naming the NaN metrics, or when there are none.
    ``undefined`` (:func:`empty_area_ranges`) names the area-range APs the test set has no ground
    truth for: those are left out instead.

    A kind whose every number is NaN while the test set has ground truth is a model that detected
    nothing: Detectron2's ``COCOEvaluator._derive_coco_results`` returns all-NaN when there are no
    predictions, because pycocotools cannot load an empty result list. Its APs are 0, the value
    pycocotools' ``COCOeval.accumulate`` gives a category with ground truth and no detections.
    """
    flat, bad = {}, []
    has_ground_truth = len(undefined) < len(AREA_RANGES)  # some area range holds ground truth
    for kind, values in results.items():
        if has_ground_truth and values and all(not math.isfinite(value) for value in values.values()):
            log.warning("%s: the model made no detections; its APs are 0", kind)
            values = {name: value if name in undefined else 0.0 for name, value in values.items()}
        for name in SUMMARY_METRICS:
            value = values.get(name)
            if value is None or (name in undefined and not math.isfinite(value)):
                continue
            if math.isfinite(value):
                flat[f"{kind}_{name}"] = float(value)
            else:
                bad.append(f"{kind}_{name}")
    if bad or not flat:
        raise UserError(f"the evaluator returned no finite {', '.join(bad) or 'AP'} (no ground truth of that "
                        "kind in the test set?)")
    return flat


@contextmanager
def cpu_ddp(device: str) -> Iterator[None]:
    """On CPU, let ``DefaultTrainer.__init__`` wrap the model in DDP without ``device_ids``.

    Detectron2's ``create_ddp_model`` (engine/defaults.py) passes ``device_ids=[local rank]``, which
    torch's DistributedDataParallel refuses for a CPU module; ``device_ids=None`` is how DDP takes one.
    Patched for the trainer's construction only, and only on CPU (several gloo processes).
    """
    if device != "cpu":
        yield
        return
    from detectron2.engine import defaults

    original = defaults.create_ddp_model
    defaults.create_ddp_model = lambda model, **kwargs: original(model, **{"device_ids": None, **kwargs})
    try:
        yield
    finally:
        defaults.create_ddp_model = original


def train(cfg, backbone: Backbone | None, resume: bool) -> dict[str, float] | None:
    """Train and evaluate; the flat metrics on the main process (UserError unless all are finite), else None."""
    with cpu_ddp(cfg.MODEL.DEVICE):
        trainer = Trainer(cfg)
    if resume and trainer.checkpointer.has_checkpoint():
        log.info("resuming from %s", trainer.checkpointer.get_checkpoint_file())
        trainer.resume_or_load(resume=True)  # MODEL.WEIGHTS is empty: only our own last checkpoint
    elif backbone is not None:
        report = load_into(trainer.checkpointer, backbone, cfg.OUTPUT_DIR).as_dict()
        if comm.is_main_process():
            Path(cfg.OUTPUT_DIR, "backbone_load.json").write_text(json.dumps(report))
    else:
        log.info("training from scratch (no backbone weights)")
    trainer.train()
    if not comm.is_main_process():
        return None
    results = getattr(trainer, "_last_eval_results", None) or {}
    try:
        return flatten_metrics(results, empty_area_ranges(cfg.DATASETS.TEST[0]))
    except UserError as err:
        raise UserError(f"{', '.join(cfg.DATASETS.TEST)}: {err}") from None
