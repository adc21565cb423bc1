"""The detection tasks: name -> Detectron2 YAML config, record dataset label and evaluator.

The configs live in ``configs/detection/`` (each cites the Detectron2 / MoCo files it derives
from). ``dataset`` is the record's dataset field (docs/contracts.md §3); ``evaluator`` picks
COCOEvaluator or PascalVOCDetectionEvaluator, as moco ``detection/train_net.py`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resa_core.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "detection"


@dataclass(frozen=True)
class DetectionTask:
    name: str
    dataset: str
    evaluator: str  # "coco" or "pascal_voc"

    @property
    def config_file(self) -> Path:
        return CONFIG_DIR / f"{self.name}.yaml"


TASKS = {
    task.name: task
    for task in (
        DetectionTask("coco_mask_rcnn_r50_fpn_1x", "coco_2017", "coco"),
        DetectionTask("coco_mask_rcnn_r50_c4_1x", "coco_2017", "coco"),
        DetectionTask("voc07_faster_rcnn_r50_c4_24k", "voc07", "pascal_voc"),
        DetectionTask("voc0712_faster_rcnn_r50_c4_24k", "voc0712", "pascal_voc"),
        DetectionTask("fmnist_scenes_mask_rcnn_r18_fpn", "fmnist_scenes", "coco"),  # the demo's (CPU-sized)
    )
}


def get_task(name: str) -> DetectionTask:
    if name not in TASKS:
        raise UserError(f"unknown detection task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]
