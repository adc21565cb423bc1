"""The demo's two fine-tuning tasks learn on Fashion-MNIST scenes, on CPU, in a few iterations.

Mask R-CNN R18-FPN (Detectron2) and FCN-R18-D8 (MMSegmentation) start from the same randomly
initialised ResNet-18 file (``python -m downstream random-backbone``), are evaluated before the
first iteration and after a short schedule on held-out scenes (test-split objects), and must
improve by a clear margin. Scenes are 64 px (objects 16-32 px) to keep the CPU time small.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import require

from resa_core.data.fmnist_scenes import make_scenes

pytestmark = pytest.mark.slow
SIZE = 64
DET_TASK, SEG_TASK = "fmnist_scenes_mask_rcnn_r18_fpn", "fmnist_scenes_fcn_r18_d8"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    try:
        from resa_core.data import fashion_mnist

        fashion_mnist.load_split("test")
    except Exception as err:  # noqa: BLE001 (scripts/get_data.sh installs it)
        pytest.skip(f"Fashion-MNIST not available: {err}")
    from downstream.random_backbone import main as random_backbone

    root = tmp_path_factory.mktemp("transfer")
    make_scenes(root / "datasets" / "fmnist_scenes", train=64, val=16, size=SIZE, seed=0)
    random_backbone(["--arch", "resnet18", "--seed", "0", "-o", str(root / "random_r18.pth")])
    return root


def test_mask_rcnn_r18_fpn_box_and_mask_ap_rise_above_their_value_at_init(world, monkeypatch):
    require("detectron2", "bash scripts/install_detection.sh")
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.utils.env import seed_all_rng

    from downstream.detection.config import build_cfg
    from downstream.detection.datasets import check_datasets
    from downstream.detection.tasks import get_task
    from downstream.detection.trainer import Trainer, empty_area_ranges, flatten_metrics
    from downstream.detection.weights import load_into, read_weights
    from downstream.scenes.detectron2_sets import dataset_name

    monkeypatch.setenv("DETECTRON2_DATASETS", str(world / "datasets"))
    names = [dataset_name(split) for split in ("train", "val")]  # check_datasets registers them under this root
    iters = 60
    overrides = [f"INPUT.MIN_SIZE_TRAIN=({SIZE},)", f"INPUT.MAX_SIZE_TRAIN={SIZE}", f"INPUT.MIN_SIZE_TEST={SIZE}",
                 f"INPUT.MAX_SIZE_TEST={SIZE}", "SOLVER.IMS_PER_BATCH=4", f"SOLVER.MAX_ITER={iters}",
                 "SOLVER.STEPS=()", "SOLVER.WARMUP_ITERS=5", f"SOLVER.CHECKPOINT_PERIOD={iters}"]
    output = world / "detectron2"
    output.mkdir()
    cfg = build_cfg(get_task(DET_TASK), overrides, world_size=1, seed=0, output_dir=str(output))
    # As `python -m downstream detection` does through default_setup: the sampler's order and the flips
    # come from NumPy's global generator, which pytest-randomly reseeds differently on every run.
    seed_all_rng(cfg.SEED)
    try:
        check_datasets(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST))
        trainer = Trainer(cfg)
        report = load_into(trainer.checkpointer, read_weights(str(world / "random_r18.pth")), cfg.OUTPUT_DIR)
        assert report.resnet_keys == report.equal_values > 0  # every ResNet-18 tensor loaded, by value
        undefined = empty_area_ranges(cfg.DATASETS.TEST[0])
        at_init = flatten_metrics(Trainer.test(cfg, trainer.model), undefined)
        trainer.train()
        after = flatten_metrics(trainer._last_eval_results, undefined)
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
    # Measured on the 2-core EPYC, every AP 0.0 at init. Before the seeding above, the order followed
    # pytest-randomly's per-run seed and box AP after training ranged 0.14-3.11 over five runs (0.14 failed
    # below); seeded, runs under different pytest-randomly seeds repeat their result: box AP 2.29, AP50 7.53,
    # mask AP 2.16 twice at one thread, box AP 2.76, mask AP 2.72 twice at two. The margins ask for a clear
    # gain over init.
    assert after["bbox_AP"] > at_init.get("bbox_AP", 0.0) + 0.25, (at_init, after)
    assert after["bbox_AP50"] > at_init.get("bbox_AP50", 0.0) + 1.0, (at_init, after)
    assert after["segm_AP"] > at_init.get("segm_AP", 0.0) + 0.25, (at_init, after)


def test_fcn_r18_miou_rises_above_its_value_at_init(world):
    require("mmseg", "bash scripts/install_segmentation.sh")
    from downstream.segmentation.cli import main

    run_dir, iters = world / "seg_run", 40
    status = main(["--task", SEG_TASK, "--weights", str(world / "random_r18.pth"), "--run-dir", str(run_dir),
                   "--data-root", str(world / "datasets"), "--name", "random", "--eval-at-init",
                   f"model.data_preprocessor.size=[{SIZE},{SIZE}]", f"train_cfg.max_iters={iters}",
                   f"train_cfg.val_interval={iters}", f"param_scheduler.0.end={iters}",
                   f"default_hooks.checkpoint.interval={iters}", "default_hooks.logger.interval=10"])
    assert status == 0
    (record_file,) = (run_dir / "records" / SEG_TASK / "fmnist_scenes").rglob("seed0.json")
    metrics = json.loads(record_file.read_text())["metrics"]
    assert metrics["mIoU"] > metrics["init_mIoU"] + 5.0, metrics
    assert os.path.isdir(run_dir / "work_dirs" / SEG_TASK)
