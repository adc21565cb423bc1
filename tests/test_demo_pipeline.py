"""The demo pipeline, shrunk, end to end through submitit's local executor on real Fashion-MNIST."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT, repo_path
from converted_checks import assert_converted

from results.layout import load_layout

SHRINK = ["vars.epochs=1", "vars.pretrain_size=512", "vars.train_size=512", "vars.test_size=200", "vars.episodes=40",
          "vars.linear_epochs=20", "vars.scenes_train=16", "vars.scenes_val=4", "vars.det_iters=2",
          "vars.seg_iters=2"]
METHODS = ("resa", "infonce", "random", "pixels")
FINETUNED = ("resa", "infonce", "random")  # nothing to fine-tune for raw pixels
FINETUNE_TASKS = ("fmnist_scenes_mask_rcnn_r18_fpn", "fmnist_scenes_fcn_r18_d8")


def run_pipeline(path, *overrides, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "slurm", "run", str(path), *overrides], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)  # stage args are repo-relative


@pytest.mark.slow
def test_shrunken_demo_produces_every_stage_output_and_a_full_table(tmp_path):
    run_dir, datasets = tmp_path / "demo", tmp_path / "datasets"
    env = {k: v for k, v in os.environ.items() if k != "DETECTRON2_DATASETS"}  # vars.datasets alone places the scenes
    result = run_pipeline(repo_path("configs/pipelines/demo.yaml"), f"run_dir={run_dir}", f"vars.datasets={datasets}",
                          *SHRINK, timeout=1500, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    for method in ("resa", "infonce"):
        state = torch.load(run_dir / "pretrain" / method / "checkpoint.pth", weights_only=True)
        assert state["method"] == method and state["epoch"] == 1
        assert (run_dir / "pretrain" / method / "metrics.jsonl").stat().st_size > 0
        for target, ext in (("detectron2", "pkl"), ("mmseg", "pth"), ("torchvision", "pth")):
            assert_converted(run_dir / "pretrain" / method / "checkpoint.pth",
                             run_dir / "backbones" / method / f"{target}.{ext}", target)

    records = [json.loads(p.read_text()) for p in (run_dir / "records").rglob("seed0.json")]
    assert sorted((r["task"], r["backbone"]["name"]) for r in records) == sorted(
        [(task, method) for task in ("knn", "linear", "fewshot") for method in METHODS]
        + [(task, method) for task in FINETUNE_TASKS for method in FINETUNED])
    assert all(r["status"] == "ok" and r["metrics"] for r in records)
    resa_knn = next(r for r in records if r["task"] == "knn" and r["backbone"]["name"] == "resa")
    assert resa_knn["backbone"]["method"] == "resa" and resa_knn["backbone"]["pretrain_epochs"] == 1

    table = (run_dir / "tables" / "demo.md").read_text()
    assert table in result.stdout
    layout = load_layout("demo")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(METHODS)
    for method, row in zip(METHODS, rows[1:], strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[0] == method
        assert len(cells) == 1 + len(layout.columns)
        for column, cell in zip(layout.columns, cells[1:], strict=True):
            empty = method == "pixels" and column.task in FINETUNE_TASKS
            assert cell and cell.startswith("–") == empty, row
    assert (run_dir / "tables" / "demo.csv").is_file()
    assert (run_dir / "tables" / "knn_top1_vs_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_failed_stage_leaves_no_ok_record_and_its_dependents_do_not_run(tmp_path):
    pipeline = tmp_path / "failing.yaml"
    pipeline.write_text(f"""
name: failing
run_dir: {tmp_path / 'run'}
stages:
  - name: knn
    command: downstream
    args: [knn, --dataset, fashion_mnist, --weights, pixels, --run-dir, "{{run_dir}}",
           data_root=/nonexistent/fashion-mnist]
  - name: tables
    command: results
    after: [knn]
    args: [table, --run-dir, "{{run_dir}}"]
""")
    result = run_pipeline(pipeline, timeout=300)
    assert result.returncode == 1
    assert "knn: failed" in result.stdout and "Fashion-MNIST train files not found" in result.stdout
    assert "tables: not run (a dependency failed)" in result.stdout
    records = [json.loads(p.read_text()) for p in (tmp_path / "run" / "records").rglob("*.json")]
    assert records and all(r["status"] == "failed" for r in records)
    assert not (tmp_path / "run" / "tables").exists()
