"""The metric vocabulary of docs/contracts.md §3, so a layout cannot name a metric that no task writes.

A typo such as ``top1_k05`` would otherwise render a column of empty cells; checking the
layout against the documented names turns it into an error that names the key.
"""

from __future__ import annotations

import re

# Detectron2 tasks write COCO-style AP (bbox_ and, with masks, segm_); MMSegmentation tasks mIoU/mAcc/aAcc
# (init_* before fine-tuning); task names as registered by downstream/detection and downstream/segmentation.
DETECTION_METRICS = re.compile(r"(bbox|segm)_AP(50|75|s|m|l)?")
SEGMENTATION_METRICS = re.compile(r"(init_)?(mIoU|mAcc|aAcc)")
DETECTION_TASKS = ("coco_mask_rcnn_r50_fpn_1x", "coco_mask_rcnn_r50_c4_1x", "voc07_faster_rcnn_r50_c4_24k",
                   "voc0712_faster_rcnn_r50_c4_24k", "fmnist_scenes_mask_rcnn_r18_fpn")
SEGMENTATION_TASKS = ("voc12aug_fcn_r50_d8_20k", "cityscapes_fcn_r50_d8_40k", "ade20k_upernet_r50_160k",
                      "ade20k_upernet_vit_s16_160k", "fmnist_scenes_fcn_r18_d8")

METRIC_PATTERNS: dict[str, re.Pattern[str]] = {
    "knn": re.compile(r"(top[15]_k[1-9][0-9]*|top1_majority_k[1-9][0-9]*)|"
                      r"(top1_k[1-9][0-9]*|top1_majority_k[1-9][0-9]*)_(many|medium|few)"),  # buckets=long_tail
    "linear": re.compile(r"top[15]"),
    "lowshot": re.compile(r"top[15]"),
    "fewshot": re.compile(r"(acc|ci95)_[1-9][0-9]*way[1-9][0-9]*shot"),
    "logreg-transfer": re.compile(r"(val_)?(top1|mean_per_class|map11)|selected_C"),
    "clustering": re.compile(
        r"(sc_mean|sc_std|ari|inter_class_dist|intra_class_var)_(encoding|embedding|hidden[0-9]+)"),
    **{task: DETECTION_METRICS for task in DETECTION_TASKS},
    **{task: SEGMENTATION_METRICS for task in SEGMENTATION_TASKS},
}


def is_known_metric(task: str, metric: str) -> bool:
    """True when ``metric`` is a documented metric name of ``task``."""
    pattern = METRIC_PATTERNS.get(task)
    return pattern is not None and pattern.fullmatch(metric) is not None
