"""A stage's exit status decides its dependents; a requeued detection job continues with ``--resume``.

* exit status 3 (pretraining stopped unfinished, here by ``run.max_steps``) is a stage failure:
  ``slurm.jobs.run_stage`` raises, so the submitit job fails (on SLURM its ``afterok``
  dependents never start) and the local runner marks the dependents not run;
* ``StageJob.checkpoint`` (submitit's requeue on pre-emption) adds ``--resume`` to a detection
  job once, and to nothing else (``tests/test_detection_e2e.py`` shows ``--resume`` continuing
  from Detectron2's last checkpoint).
"""

from __future__ import annotations

import pytest
from conftest import repo_path
from local_pipeline import write_pretrain_then_convert

from slurm.executors import run_local
from slurm.jobs import StageJob
from slurm.pipeline import load_pipeline

TINY = ["data.train_size=32", "optim.batch_size=16", "epochs=1", "optim.warmup_epochs=0", "run.num_threads=1",
        "model.projector_hidden_dim=32", "model.projector_out_dim=16", "run.tensorboard=false"]


@pytest.mark.slow
def test_exit_status_3_fails_the_stage_and_its_dependents_are_not_run(tmp_path, capsys):
    args = [repo_path("configs/pretrain/demo_fmnist_resa.yaml"), "output_dir={run_dir}/pretrain", *TINY,
            "run.max_steps=1"]
    state = run_local(load_pipeline(write_pretrain_then_convert(tmp_path, "unfinished", args)))
    assert state == {"pretrain": "FAILED", "convert": "NOT_RUN"}
    printed = capsys.readouterr().out
    assert "exited with status 3" in printed and "convert: not run (a dependency failed)" in printed
    assert (tmp_path / "run" / "pretrain" / "checkpoint.pth").is_file()  # the unfinished run saved its step
    assert not (tmp_path / "run" / "torchvision.pth").exists()


def test_a_requeued_detection_job_resumes_and_other_jobs_rerun_unchanged():
    detection = StageJob("downstream", ["detection", "--task", "t", "--weights", "w"], 1, "/m", "h")
    requeued = detection.checkpoint().function
    assert requeued.argv == ["detection", "--task", "t", "--weights", "w", "--resume"]
    assert requeued.checkpoint().function.argv.count("--resume") == 1  # a second requeue adds nothing
    knn = StageJob("downstream", ["knn", "--dataset", "d"], 1, "/m", "h")
    assert knn.checkpoint().function.argv == ["knn", "--dataset", "d"]
    results = StageJob("results", ["table", "--run-dir", "r"], 1, "/m", "h")
    assert results.checkpoint().function.argv == ["table", "--run-dir", "r"]
