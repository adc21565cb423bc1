"""Pipelines on a real one-node SLURM cluster (``slurm_cluster`` fixture: scripts/slurm_cluster.sh).

The smoke pipeline (pretrain a few steps on real Fashion-MNIST -> convert -> k-NN job array ->
table) runs end to end through ``--executor slurm``; running it again submits nothing, and
after a record is deleted only that job and the table run. A failing stage leaves its
dependents unrun and ``status`` names it with its error; a pretrain job interrupted by the
pre-emption signal is requeued and resumes at the step it reached; a pipeline still running is
not submitted twice, and ``cancel`` stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, in_repo_root, repo_path
from converted_checks import assert_converted

from slurm.pipeline import load_pipeline
from slurm.plan import plan

SMOKE = repo_path("configs/pipelines/smoke.yaml")
PRETRAIN_ARGS = ["optim.batch_size=32", "optim.warmup_epochs=0", "model.projector_hidden_dim=128",
                 "model.projector_out_dim=64", "run.num_threads=1", "run.log_every_steps=1"]


def slurm(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m slurm`` from the repository root, as documented (a pipeline's stage args are repo-relative)."""
    return subprocess.run([sys.executable, "-m", "slurm", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def submitted_lines(output: str) -> list[str]:
    return sorted(line.split(":")[0].removeprefix("submitted ") for line in output.splitlines()
                  if line.startswith("submitted "))


@pytest.mark.slow
def test_smoke_pipeline_end_to_end_then_reruns_only_what_is_missing(slurm_cluster, tmp_path):
    run_dir = tmp_path / "smoke"
    first = slurm("run", SMOKE, "--executor", "slurm", "--wait", f"run_dir={run_dir}")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert len(submitted_lines(first.stdout)) == 9

    state = torch.load(run_dir / "pretrain" / "resa" / "checkpoint.pth", weights_only=True)
    assert state["epoch"] == 1 and state["global_step"] == 8
    assert_converted(run_dir / "pretrain" / "resa" / "checkpoint.pth",
                     run_dir / "backbones" / "resa" / "torchvision.pth", "torchvision")
    # Six k-NN jobs ran as one array, concurrently, each writing its own record: none lost.
    submitted = json.loads((run_dir / "slurm" / "submitted.json").read_text())
    knn_ids = [job["job_id"] for name, job in submitted["jobs"].items() if job["stage"] == "knn"]
    assert len(knn_ids) == 6 and len({job_id.split("_")[0] for job_id in knn_ids}) == 1
    records = [json.loads(p.read_text()) for p in (run_dir / "records").rglob("seed*.json")]
    assert len(records) == 6 and all(r["status"] == "ok" and r["metrics"] for r in records)
    assert sorted((r["backbone"]["name"], r["seed"]) for r in records) == sorted(
        (name, seed) for name in ("resa", "pixels") for seed in (0, 1, 2))
    table = (run_dir / "tables" / "smoke.md").read_text()
    assert "| resa | " in table and "(n=" not in table and "–" not in table.split("\n\n")[2]

    again = slurm("run", SMOKE, "--executor", "slurm", "--wait", f"run_dir={run_dir}")
    assert again.returncode == 0, again.stdout[-3000:]
    assert submitted_lines(again.stdout) == [] and again.stdout.count("up to date, skipped") == 9

    pixels_seed1 = next(p for p in (run_dir / "records").rglob("seed1.json")
                        if json.loads(p.read_text())["backbone"]["name"] == "pixels")
    pixels_seed1.unlink()
    partial = slurm("run", SMOKE, "--executor", "slurm", "--wait", f"run_dir={run_dir}")
    assert partial.returncode == 0, partial.stdout[-3000:]
    assert submitted_lines(partial.stdout) == ["knn-pixels-1", "tables"]
    assert pixels_seed1.is_file()

    # A changed config reruns what it changes and everything downstream of it, nothing else.
    with in_repo_root():
        changed = plan(load_pipeline(SMOKE, [f"run_dir={run_dir}", "executor=slurm", "vars.knn_test_size=100"]))
        retrained = plan(load_pipeline(SMOKE, [f"run_dir={run_dir}", "vars.batch_size=16"]))
    assert [name for name, reason in changed.items() if reason is None] == [
        "knn-resa-0", "knn-resa-1", "knn-resa-2", "knn-pixels-0", "knn-pixels-1", "knn-pixels-2", "tables"]
    assert all(reason is None for name, reason in retrained.items() if not name.startswith("knn-pixels"))


@pytest.mark.slow
def test_a_failing_stage_leaves_dependents_unrun_and_status_reports_it(slurm_cluster, tmp_path):
    pipeline = tmp_path / "failing.yaml"
    pipeline.write_text(f"""
name: failing
run_dir: {tmp_path / 'run'}
executor: slurm
resources: {{cpus_per_task: 1, mem_gb: 2, timeout_min: 10}}
stages:
  - name: knn
    command: downstream
    args: [knn, --dataset, fashion_mnist, --weights, pixels, --name, pixels, --run-dir, "{{run_dir}}",
           data_root=/nonexistent/fashion-mnist]
  - name: tables
    command: results
    after: [knn]
    args: [table, --run-dir, "{{run_dir}}", --layout, smoke]
""")
    result = slurm("run", str(pipeline), "--wait")
    assert result.returncode == 1
    assert "stage knn failed" in result.stdout and "Fashion-MNIST train files not found" in result.stdout
    assert "not run because a dependency failed: tables" in result.stdout
    status = slurm("status", str(tmp_path / "run"))
    assert status.returncode == 1 and status.stdout == result.stdout[result.stdout.index("pipeline failing:\n"):]
    assert not (tmp_path / "run" / "tables").exists()


@pytest.mark.slow
def test_preempted_pretrain_is_requeued_and_resumes_at_the_step_it_reached(slurm_cluster, tmp_path):
    run_dir = tmp_path / "pre"
    pipeline = tmp_path / "pretrain.yaml"
    pipeline.write_text(f"""
name: preempt
run_dir: {run_dir}
executor: slurm
resources: {{cpus_per_task: 1, mem_gb: 2, timeout_min: 20, max_requeue: 2}}
stages:
  - name: pretrain
    command: pretrain
    args: [configs/pretrain/demo_fmnist_resa.yaml, "output_dir={{run_dir}}/pretrain", epochs=2,
           data.train_size=512, {', '.join(PRETRAIN_ARGS)}]
""")
    submit = slurm("run", str(pipeline))
    assert submit.returncode == 0, submit.stdout + submit.stderr
    job_id = json.loads((run_dir / "slurm" / "submitted.json").read_text())["jobs"]["pretrain"]["job_id"]
    metrics = run_dir / "pretrain" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 4):
        assert time.monotonic() < deadline, "pretrain logged no 4 steps in 300 s"
        time.sleep(0.5)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # SLURM's pre-emption warning

    states = slurm("status", str(run_dir), "--wait")
    assert states.returncode == 0 and " COMPLETED " in states.stdout, states.stdout
    state = torch.load(run_dir / "pretrain" / "checkpoint.pth", weights_only=True)
    assert state["epoch"] == 2 and state["global_step"] == 32
    log = (run_dir / "pretrain" / "train.log").read_text()
    resumed = [int(line.rsplit("(step ", 1)[1].rstrip(")")) for line in log.splitlines() if "resumed from" in line]
    assert len(resumed) == 1 and resumed[0] >= 4, log[-2000:]
    steps = {json.loads(line)["step"] for line in metrics.read_text().splitlines() if "loss" in json.loads(line)}
    assert steps == set(range(1, 33))
    err_log = Path(run_dir / "slurm" / "logs" / "pretrain" / f"{job_id}_0_log.err").read_text()
    assert "requeu" in err_log.lower(), err_log[-2000:]


@pytest.mark.slow
def test_cancel_stops_the_pipeline(slurm_cluster, tmp_path):
    run_dir = tmp_path / "long"
    args = ["run", SMOKE, "--executor", "slurm", f"run_dir={run_dir}", "vars.epochs=50"]
    assert slurm(*args).returncode == 0
    twice = slurm(*args)  # a second submission while the first runs would write the same outputs twice
    assert twice.returncode == 2 and "have not finished" in twice.stderr and len(twice.stderr.splitlines()) == 1
    cancelled = slurm("cancel", str(run_dir))
    assert cancelled.returncode == 0 and "cancelled 9 job(s)" in cancelled.stdout, cancelled.stdout
    status = slurm("status", str(run_dir), "--wait")
    assert status.returncode == 1 and "CANCELLED" in status.stdout and "NOT_RUN" in status.stdout
