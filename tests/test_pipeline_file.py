"""Pipeline files expand into the right jobs, dependencies and resources; typos are errors."""

import subprocess
import sys

import pytest
from conftest import REPO_ROOT, repo_path

from resa_core.errors import UserError
from slurm.pipeline import load_pipeline

DEMO = repo_path("configs/pipelines/demo.yaml")


def test_demo_expands_into_stages_with_matched_dependencies():
    pipeline = load_pipeline(DEMO, ["run_dir=/tmp/somewhere", "vars.epochs=1"])
    names = [job.name for job in pipeline.jobs]
    assert names[:2] == ["pretrain-resa", "pretrain-infonce"] and names[-1] == "tables"
    assert len(names) == 2 + 6 + 12 + 2 + 6 + 1  # + scenes, random_backbone, 3 detection, 3 segmentation
    assert pipeline.job("convert-resa-mmseg").after == ["pretrain-resa"]
    assert pipeline.job("knn-infonce").after == [
        "convert-infonce-detectron2", "convert-infonce-mmseg", "convert-infonce-torchvision"]
    assert pipeline.job("fewshot-random").after == [] and pipeline.job("linear-pixels").after == []
    assert len(pipeline.job("tables").after) == 12 + 6
    assert pipeline.job("detection-random").after == ["scenes", "random_backbone"]
    pretrain = pipeline.job("pretrain-resa")
    assert "epochs=1" in pretrain.argv and "output_dir=/tmp/somewhere/pretrain/resa" in pretrain.argv
    assert pretrain.resources["cpus_per_task"] == 1 and pretrain.resources["mem_gb"] == 8
    knn = pipeline.job("knn-resa")
    assert knn.argv[knn.argv.index("--weights") + 1] == "/tmp/somewhere/backbones/resa/torchvision.pth"
    assert pipeline.report == "/tmp/somewhere/tables/demo.md"


@pytest.mark.parametrize("override, message", [
    ("vars.epoch=3", "unknown config key 'vars.epoch'"),
    ("resources.gpu=1", "unknown config key 'resources.gpu'"),
    ("executor=kubernetes", "executor 'kubernetes' unknown"),
])
def test_bad_overrides_are_errors(override, message):
    with pytest.raises(UserError, match=message):
        load_pipeline(DEMO, [override])


def test_a_stage_naming_an_unknown_variable_is_an_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("stages:\n  - {name: a, command: results, args: ['{nope}']}\n")
    with pytest.raises(UserError, match="unknown variable 'nope'"):
        load_pipeline(path)


def test_dry_run_prints_the_graph_and_submits_nothing(tmp_path):
    result = subprocess.run([sys.executable, "-m", "slurm", "run", DEMO, "--dry-run", "--executor", "slurm",
                             f"run_dir={tmp_path}/run"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "executor slurm" in result.stdout and "- tables [tables] after: knn-resa" in result.stdout
    assert "python -m converters" in result.stdout and "cpus=1 mem=8G" in result.stdout
    assert not (tmp_path / "run").exists()
