"""`python -m slurm` without a cluster: the dry run shows arrays and requeues; bad targets are one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, repo_path

from results.layout import load_layout
from slurm.pipeline import load_pipeline


def slurm(*args: str) -> subprocess.CompletedProcess:
    """``python -m slurm`` from the repository root, as documented (a pipeline's stage args are repo-relative)."""
    return subprocess.run([sys.executable, "-m", "slurm", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)


def test_dry_run_shows_job_arrays_requeues_and_submits_nothing(tmp_path):
    result = slurm("run", repo_path("configs/pipelines/smoke.yaml"), "--dry-run", "--executor", "slurm",
                   f"run_dir={tmp_path}/r", "resources.max_requeue=5", "resources.partition=gpu")
    assert result.returncode == 0, result.stderr
    knn = [line for line in result.stdout.splitlines() if "--job-name=smoke-knn" in line]
    assert len(knn) == 6 and all("--array=0-5%32" in line for line in knn)
    assert "--partition=gpu" in knn[0] and "(requeues <= 5)" in knn[0] and "--mem=2G" in knn[0]
    assert "up to date" not in result.stdout and not (tmp_path / "r").exists()


def test_status_of_a_run_that_was_never_submitted_is_a_one_line_error(tmp_path):
    result = slurm("status", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "nothing was submitted" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_resource_override_is_a_one_line_error(tmp_path):
    result = slurm("run", repo_path("configs/pipelines/smoke.yaml"), "--dry-run", "resources.gpus=1")
    assert result.returncode == 2 and "unknown config key 'resources.gpus'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("path", sorted(Path(repo_path("configs/pipelines")).glob("*.yaml")), ids=lambda p: p.stem)
def test_every_pipeline_preset_expands_and_names_shipped_layouts(path):
    pipeline = load_pipeline(path, ["run_dir=/tmp/never-written"])
    names = {job.name for job in pipeline.jobs}
    assert pipeline.jobs and all(set(job.after) <= names for job in pipeline.jobs)
    for job in pipeline.jobs:
        if job.command == "results":
            load_layout(job.argv[job.argv.index("--layout") + 1])
        if job.command == "pretrain":  # a repo-relative config path (stages run from the repository root)
            assert Path(REPO_ROOT, job.argv[0]).is_file()
