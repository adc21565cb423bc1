"""Ctrl-C of a local pipeline run: one line, no traceback, pretraining saves, the same command resumes.

The runner is started in its own session and the whole process group gets SIGINT, as a
terminal's Ctrl-C does, at a deterministic point: once pretraining has written its first
metrics line (step 1 done, more to go). Real Fashion-MNIST (scripts/get_data.sh), a tiny
ResNet-18 pretraining (batch 32 at 32 px) and a conversion stage after it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from converted_checks import assert_converted
from local_pipeline import write_pretrain_then_convert

STEPS_PER_EPOCH, EPOCHS = 8, 2


def _pipeline(tmp_path: Path) -> Path:
    return write_pretrain_then_convert(tmp_path, "interrupt", [
        "configs/pretrain/demo_fmnist_resa.yaml", "output_dir={run_dir}/pretrain", f"epochs={EPOCHS}",
        f"data.train_size={32 * STEPS_PER_EPOCH}", "optim.batch_size=32", "optim.warmup_epochs=1",
        "run.log_every_steps=1", "run.num_threads=1", "run.tensorboard=false"])


def _interruptible() -> None:
    """Ctrl-C enabled in the runner, as in a terminal's foreground job, even where pytest itself runs with
    SIGINT ignored (a background job of a non-interactive shell: the child would inherit SIG_IGN)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ignoring_ctrl_c() -> None:
    """SIGINT ignored in the runner, as in a background job of a non-interactive shell or under ``nohup``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(pipeline: Path, log: Path, preexec) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "slurm", "run", str(pipeline)], stdout=out, cwd=REPO_ROOT,
                                stderr=subprocess.STDOUT, start_new_session=True, text=True, preexec_fn=preexec)


def _wait_for_first_step(metrics: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.is_file() and metrics.read_text().count("\n") >= 1:
            return
        assert process.poll() is None, "the run ended before its first pretraining step"
        time.sleep(0.2)
    raise AssertionError("no pretraining step within the timeout")


def _sigint_after_first_step(tmp_path: Path, log_name: str, preexec, timeout: float):
    """Start the tiny pipeline's runner, send its process group SIGINT once pretraining has logged step 1 and wait
    for the runner: ``(pipeline, run dir, exit status, output)``. Skips where Fashion-MNIST is not installed."""
    try:
        from resa_core.data import fashion_mnist

        fashion_mnist.load_split("test")
    except Exception as err:  # noqa: BLE001 (scripts/get_data.sh installs it)
        pytest.skip(f"Fashion-MNIST not available: {err}")
    pipeline, run, log = _pipeline(tmp_path), tmp_path / "run", tmp_path / log_name
    process = _start(pipeline, log, preexec)
    try:
        _wait_for_first_step(run / "pretrain" / "metrics.jsonl", process)
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        status = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return pipeline, run, status, log.read_text()


def _steps(metrics: Path) -> list[int]:
    return [record["step"] for record in map(json.loads, metrics.read_text().splitlines()) if "loss" in record]


@pytest.mark.slow
def test_ctrl_c_saves_prints_one_line_and_the_same_command_resumes(tmp_path):
    pipeline, run, status, output = _sigint_after_first_step(tmp_path, "first.log", _interruptible, timeout=300)
    metrics, checkpoint = run / "pretrain" / "metrics.jsonl", run / "pretrain" / "checkpoint.pth"
    assert status == 130, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1 and "pretrain" in lines[0] and f"python -m slurm run {pipeline}" in lines[0], output
    assert output.rstrip().splitlines()[-1] == lines[0]  # nothing after the one line
    saved = torch.load(checkpoint, weights_only=False)
    assert 1 <= saved["global_step"] < STEPS_PER_EPOCH * EPOCHS
    assert not (run / "torchvision.pth").exists()

    again = subprocess.run([sys.executable, "-m", "slurm", "run", str(pipeline)], cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert torch.load(checkpoint, weights_only=False)["global_step"] == STEPS_PER_EPOCH * EPOCHS
    assert_converted(checkpoint, run / "torchvision.pth", "torchvision")
    steps = _steps(metrics)  # resumed, not restarted: every step logged once, in order
    assert steps == list(range(1, STEPS_PER_EPOCH * EPOCHS + 1))


@pytest.mark.slow
def test_a_run_started_with_ctrl_c_ignored_ignores_it_in_every_stage(tmp_path):
    """A SIGINT to the process group of a runner that ignores it (a background job) stops nothing: before,
    the stages caught it, saved and failed while the runner went on, so the run ended with its stages failed."""
    _, run, status, output = _sigint_after_first_step(tmp_path, "run.log", _ignoring_ctrl_c, timeout=600)
    metrics, checkpoint = run / "pretrain" / "metrics.jsonl", run / "pretrain" / "checkpoint.pth"
    assert status == 0 and "interrupted" not in output, output
    assert torch.load(checkpoint, weights_only=False)["global_step"] == STEPS_PER_EPOCH * EPOCHS
    assert _steps(metrics) == list(range(1, STEPS_PER_EPOCH * EPOCHS + 1))  # one uninterrupted run
    assert_converted(checkpoint, run / "torchvision.pth", "torchvision")
