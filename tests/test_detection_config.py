"""Detection launcher pieces that need Detectron2 but no training: configs, scaling, datasets, weights."""

import json
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
    synced = "SyncBN" if torch.cuda.is_available() else "naiveSyncBN"  # torch's SyncBatchNorm is GPU-only
    assert fpn.MODEL.RESNETS.NORM == fpn.MODEL.FPN.NORM == synced and fpn.MODEL.MASK_ON
    assert "NORM: \"SyncBN\"" in TASKS["coco_mask_rcnn_r50_fpn_1x"].config_file.with_name(
        "Base-RCNN-FPN-SyncBN.yaml").read_text()


def test_fewer_processes_keep_the_reference_total_batch_by_default(caplog):
    """Detectron2/MoCo configs: 16 images per iteration, LR 0.02, 24k/90k iterations, whatever the GPU count."""
    from detectron2.engine import DefaultTrainer

    from downstream.detection.config import build_cfg
    from downstream.detection.tasks import TASKS

    for world_size in (1, 2, 4, 8):
        cfg = build_cfg(TASKS["voc07_faster_rcnn_r50_c4_24k"], [], world_size=world_size, seed=0, output_dir="x")
        assert (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR) == (16, 0.02)
        assert (cfg.SOLVER.MAX_ITER, cfg.SOLVER.STEPS, cfg.SOLVER.WARMUP_ITERS) == (24000, (18000, 22000), 100)
        assert cfg.TEST.PRECISE_BN.NUM_ITER == 200 and cfg.PROTOCOL_NOTES == []
        # DefaultTrainer.__init__ calls auto_scale_workers again: it must leave the config as it is
        assert DefaultTrainer.auto_scale_workers(cfg, world_size) is cfg
    with pytest.raises(UserError, match="IMS_PER_BATCH=16 images cannot be split over 3 processes"):
        build_cfg(TASKS["voc07_faster_rcnn_r50_c4_24k"], [], world_size=3, seed=0, output_dir="x")


def test_linear_scaling_on_request_scales_precise_bn_and_says_so(caplog):
    from downstream.detection.config import build_cfg
    from downstream.detection.tasks import TASKS

    with caplog.at_level(logging.WARNING, logger="downstream.detection"):
        cfg = build_cfg(TASKS["voc07_faster_rcnn_r50_c4_24k"], [], 1, 0, "unused", linear_scaling=True)
    assert cfg.SOLVER.IMS_PER_BATCH == 2 and cfg.SOLVER.BASE_LR == pytest.approx(0.0025)
    assert (cfg.SOLVER.MAX_ITER, cfg.SOLVER.STEPS) == (192000, (144000, 176000))
    assert cfg.TEST.PRECISE_BN.NUM_ITER == 1600  # 200 x 16 images at the reference batch = 1600 x 2
    assert cfg.MODEL.RESNETS.NORM == "BN"
    assert "falls back to BN" in caplog.text and "linear scaling from 8 to 1" in caplog.text
    (note,) = cfg.PROTOCOL_NOTES
    assert "linear scaling from 8 to 1" in note and "total batch is 16" in note
    two = build_cfg(TASKS["coco_mask_rcnn_r50_fpn_1x"], [], world_size=2, seed=0, output_dir="x", linear_scaling=True)
    assert (two.SOLVER.IMS_PER_BATCH, two.SOLVER.MAX_ITER, two.TEST.PRECISE_BN.NUM_ITER) == (4, 360000, 800)
    expected = "SyncBN" if torch.cuda.is_available() else "naiveSyncBN"  # torch's SyncBatchNorm is GPU-only
    assert two.MODEL.RESNETS.NORM == two.MODEL.FPN.NORM == expected
    with pytest.raises(UserError, match="not a multiple of SOLVER.REFERENCE_WORLD_SIZE=8"):
        build_cfg(TASKS["voc07_faster_rcnn_r50_c4_24k"], ["SOLVER.IMS_PER_BATCH=12"], 1, 0, "x", linear_scaling=True)


def test_a_nan_ap_fails_the_run_instead_of_dropping_the_column():
    from downstream.detection.trainer import flatten_metrics

    finite = {"AP": 1.5, "AP50": 4.0, "AP75": 0.5, "APs": 0.0, "APm": 2.0, "APl": 3.0}
    assert flatten_metrics({"bbox": finite})["bbox_APl"] == 3.0
    with pytest.raises(UserError, match="no finite segm_APl"):
        flatten_metrics({"bbox": finite, "segm": dict(finite, APl=float("nan"))})
    with pytest.raises(UserError, match="no finite AP"):
        flatten_metrics({})


def test_an_area_range_with_no_ground_truth_is_left_out_and_any_other_nan_still_fails(tmp_path):
    from detectron2.data import MetadataCatalog

    from downstream.detection.trainer import empty_area_ranges, flatten_metrics

    annotations = [{"id": 1, "area": 20.0 ** 2, "iscrowd": 0}, {"id": 2, "area": 50.0 ** 2, "iscrowd": 0},
                   {"id": 3, "area": 200.0 ** 2, "iscrowd": 1}]  # a crowd region counts for nothing
    json_file = tmp_path / "instances.json"
    json_file.write_text(json.dumps({"annotations": annotations}))
    name = f"area_ranges_{tmp_path.name}"
    MetadataCatalog.get(name).set(json_file=str(json_file))
    undefined = empty_area_ranges(name)
    assert undefined == {"APl"}
    results = {"bbox": {"AP": 1.5, "AP50": 4.0, "AP75": 0.5, "APs": 0.0, "APm": 2.0, "APl": float("nan")}}
    assert "bbox_APl" not in flatten_metrics(results, undefined) and flatten_metrics(results, undefined)["bbox_AP"]
    with pytest.raises(UserError, match="no finite bbox_APm"):
        flatten_metrics({"bbox": dict(results["bbox"], APm=float("nan"))}, undefined)


def test_a_model_that_detected_nothing_scores_zero_where_the_test_set_has_ground_truth():
    """Detectron2's COCOEvaluator gives all-NaN without predictions; pycocotools' AP is then 0."""
    from downstream.detection.trainer import flatten_metrics

    nothing = {name: float("nan") for name in ("AP", "AP50", "AP75", "APs", "APm", "APl")}
    finite = {"AP": 1.5, "AP50": 4.0, "AP75": 0.5, "APs": 0.0, "APm": 2.0, "APl": float("nan")}  # no large GT
    flat = flatten_metrics({"bbox": finite, "segm": nothing}, frozenset({"APl"}))
    assert flat == {**{f"bbox_{k}": v for k, v in finite.items() if k != "APl"},
                    **{f"segm_{k}": 0.0 for k in ("AP", "AP50", "AP75", "APs", "APm")}}
    with pytest.raises(UserError, match="no finite bbox_AP"):  # no ground truth of any size: AP undefined
        flatten_metrics({"bbox": nothing}, frozenset({"APs", "APm", "APl"}))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["SOLVER.MAX_ITR=5"], "bad Detectron2 override"),
        (["SOLVER.MAX_ITER"], "expected KEY=VALUE"),
        (["SOLVER.MAX_ITER=abc"], "bad Detectron2 override"),
        (["MODEL.WEIGHTS=/some/file.pkl"], "MODEL.WEIGHTS must stay empty"),
    ],
)
def test_bad_overrides_are_one_line_errors(overrides, message):
    from downstream.detection.config import build_cfg
    from downstream.detection.tasks import TASKS

    with pytest.raises(UserError, match=message) as caught:
        build_cfg(TASKS["voc07_faster_rcnn_r50_c4_24k"], overrides, 1, 0, "unused")
    assert "\n" not in str(caught.value)


def test_missing_split_names_the_path_and_layout(tmp_path, monkeypatch):
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances, register_pascal_voc

    from downstream.detection.datasets import check_datasets

    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    try:  # Detectron2's catalogs are process-wide: unregistered afterwards, so the test can run again
        register_pascal_voc("test_detection_voc", str(tmp_path / "VOC2007"), "trainval", 2007)
        with pytest.raises(UserError, match=r"test_detection_voc: missing .*VOC2007/Annotations.*ImageSets/Main/"
                                            r"trainval.txt under \$DETECTRON2_DATASETS=.* \(or VOCdevkit/VOC2007/"):
            check_datasets(["test_detection_voc"])
        register_coco_instances("test_detection_coco", {}, str(tmp_path / "a.json"), str(tmp_path / "images"))
        with pytest.raises(UserError, match=r"missing .*a.json, .*images; Detectron2 expects"):
            check_datasets(["test_detection_coco"])
        with pytest.raises(UserError, match="not registered"):
            check_datasets(["no_such_set"])
    finally:
        for name in ("test_detection_voc", "test_detection_coco"):
            if name in DatasetCatalog.list():
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)


@pytest.fixture
def voc_split(tmp_path):
    """A tiny VOC2007 (deepforest tiles, downstream.detection.tiny_data) as a fresh split, unregistered afterwards."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_pascal_voc

    from downstream.detection.tiny_data import build_tiny_voc

    build_tiny_voc(tmp_path, splits={"trainval": 2})
    name = f"test_detection_voc_{tmp_path.name}"
    yield name, tmp_path, lambda: register_pascal_voc(name, str(tmp_path / "VOC2007"), "trainval", 2007)
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_voc_as_its_tarball_unpacks_is_accepted(voc_split):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from downstream.detection.datasets import check_datasets

    name, root, register = voc_split
    (root / "VOCdevkit").mkdir()
    (root / "VOC2007").rename(root / "VOCdevkit" / "VOC2007")
    register()
    check_datasets([name])
    assert MetadataCatalog.get(name).dirname == str(root / "VOCdevkit" / "VOC2007")
    records = DatasetCatalog.get(name)
    assert len(records) == 2 and all("/VOCdevkit/VOC2007/JPEGImages/" in r["file_name"] for r in records)


def test_a_missing_image_or_annotation_fails_at_the_layout_check(voc_split):
    from downstream.detection.datasets import check_datasets

    name, root, register = voc_split
    register()
    check_datasets([name])
    first, second = sorted((root / "VOC2007" / "JPEGImages").iterdir())
    first.unlink()
    with pytest.raises(UserError, match=rf"{name}: 1 of 2 image files missing, e.g. .*{first.name}$"):
        check_datasets([name])
    (root / "VOC2007" / "Annotations" / second.with_suffix(".xml").name).unlink()
    with pytest.raises(UserError, match=rf"{name}: .*No such file.*{second.stem}.xml"):
        check_datasets([name])


def test_weights_that_do_not_cover_the_resnet_are_refused_with_the_coverage_report(tmp_path):
    from downstream.detection.weights import read_weights

    partial = tmp_path / "partial.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.weight": torch.ones(64)}, partial)
    with pytest.raises(UserError, match=r"partial.pth: does not fit .*mapped 2/"):
        read_weights(str(partial))
    with pytest.raises(UserError, match="no such file"):
        read_weights(str(tmp_path / "absent.pkl"))
    assert read_weights("scratch") is None
