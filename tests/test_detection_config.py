"""Detection launcher pieces that need Detectron2 but no training: configs, scaling, datasets, weights."""

import logging

import pytest
import torch
from conftest import require

from resa_core.errors import UserError

INSTALL = "scripts/install_detection.sh"


@pytest.fixture(scope="module", autouse=True)
def detectron2():
    return require("detectron2", INSTALL)


def test_every_task_config_loads_with_the_moco_deltas():
    from downstream.detection.config import build_cfg
    from downstream.detection.tasks import TASKS

    # the demo's CPU-sized Fashion-MNIST scenes task departs on purpose (tests/test_demo_transfer.py)
    for task in (task for task in TASKS.values() if task.dataset != "fmnist_scenes"):
        cfg = build_cfg(task, [], world_size=8, seed=3, output_dir="unused")
        assert cfg.INPUT.FORMAT == "RGB" and list(cfg.MODEL.PIXEL_MEAN) == [123.675, 116.280, 103.530]
        assert cfg.MODEL.RESNETS.STRIDE_IN_1X1 is False and cfg.MODEL.BACKBONE.FREEZE_AT == 0
        assert cfg.TEST.PRECISE_BN.ENABLED and cfg.SEED == 3 and cfg.MODEL.WEIGHTS == ""
        assert (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR) == (16, 0.02)  # 8 GPUs: the reference, unscaled
    voc = build_cfg(TASKS["voc0712_faster_rcnn_r50_c4_24k"], [], 8, 0, "unused")
    assert voc.DATASETS.TRAIN == ("voc_2007_trainval", "voc_2012_trainval")
    assert (voc.SOLVER.MAX_ITER, voc.SOLVER.STEPS) == (24000, (18000, 22000))
    assert voc.MODEL.ROI_HEADS.NAME == "Res5ROIHeadsExtraNorm" and voc.MODEL.RESNETS.NORM == "naiveSyncBN"
    fpn = build_cfg(TASKS["coco_mask_rcnn_r50_fpn_1x"], [], 8, 0, "unused")
    assert fpn.MODEL.RESNETS.NORM == fpn.MODEL.FPN.NORM == "SyncBN" and fpn.MODEL.MASK_ON


def test_one_process_scales_linearly_and_falls_back_to_bn(caplog):
    from downstream.detection.config import build_cfg
    from downstream.detection.tasks import TASKS

    with caplog.at_level(logging.WARNING, logger="downstream.detection"):
        cfg = build_cfg(TASKS["voc07_faster_rcnn_r50_c4_24k"], [], world_size=1, seed=0, output_dir="unused")
    assert cfg.SOLVER.IMS_PER_BATCH == 2 and cfg.SOLVER.BASE_LR == pytest.approx(0.0025)
    assert (cfg.SOLVER.MAX_ITER, cfg.SOLVER.STEPS) == (192000, (144000, 176000))
    assert cfg.MODEL.RESNETS.NORM == "BN"
    assert "falls back to BN" in caplog.text and "linear scaling from 8 to 1" in caplog.text
    two = build_cfg(TASKS["coco_mask_rcnn_r50_fpn_1x"], [], world_size=2, seed=0, output_dir="unused")
    assert (two.SOLVER.IMS_PER_BATCH, two.SOLVER.MAX_ITER, two.MODEL.FPN.NORM) == (4, 360000, "SyncBN")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["SOLVER.MAX_ITR=5"], "bad Detectron2 override"),
        (["SOLVER.MAX_ITER"], "expected KEY=VALUE"),
        (["SOLVER.MAX_ITER=abc"], "bad Detectron2 override"),
        (["MODEL.WEIGHTS=/some/file.pkl"], "MODEL.WEIGHTS must stay empty"),
        (["SOLVER.IMS_PER_BATCH=12"], "not a multiple of SOLVER.REFERENCE_WORLD_SIZE=8"),
    ],
)
def test_bad_overrides_are_one_line_errors(overrides, message):
    from downstream.detection.config import build_cfg
    from downstream.detection.tasks import TASKS

    with pytest.raises(UserError, match=message) as caught:
        build_cfg(TASKS["voc07_faster_rcnn_r50_c4_24k"], overrides, 1, 0, "unused")
    assert "\n" not in str(caught.value)


def test_missing_split_names_the_path_and_layout(tmp_path, monkeypatch):
    from detectron2.data.datasets import register_coco_instances, register_pascal_voc

    from downstream.detection.datasets import check_datasets

    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    register_pascal_voc("test_detection_voc", str(tmp_path / "VOC2007"), "trainval", 2007)
    with pytest.raises(UserError, match=r"test_detection_voc: missing .*VOC2007/Annotations.*ImageSets/Main/"
                                        r"trainval.txt under \$DETECTRON2_DATASETS"):
        check_datasets(["test_detection_voc"])
    register_coco_instances("test_detection_coco", {}, str(tmp_path / "a.json"), str(tmp_path / "images"))
    with pytest.raises(UserError, match=r"missing .*a.json, .*images; Detectron2 expects"):
        check_datasets(["test_detection_coco"])
    with pytest.raises(UserError, match="not registered"):
        check_datasets(["no_such_set"])


def test_weights_that_do_not_cover_the_resnet_are_refused_with_the_coverage_report(tmp_path):
    from downstream.detection.weights import read_weights

    partial = tmp_path / "partial.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.weight": torch.ones(64)}, partial)
    with pytest.raises(UserError, match=r"partial.pth: does not fit .*mapped 2/"):
        read_weights(str(partial))
    with pytest.raises(UserError, match="no such file"):
        read_weights(str(tmp_path / "absent.pkl"))
    assert read_weights("scratch") is None
