"""Pre-emption: a signal mid-epoch saves a step boundary, exits 3, and the resumed run is exact."""

import signal
import subprocess
import sys

import pytest
import submitit
import torch
from conftest import repo_path

from pretrain import preemption
from pretrain.checkpoint import checkpoint_path
from pretrain.config import resolve
from pretrain.engine import EXIT_UNFINISHED, Trainer, train

DEMO = repo_path("configs/pretrain/demo_fmnist_resa.yaml")
TINY = ["data.train_size=48", "optim.batch_size=8", "epochs=2", "optim.warmup_epochs=1", "data.num_workers=2",
        "model.projector_hidden_dim=32", "model.projector_out_dim=16", "run.log_every_steps=1",
        "run.deterministic=true", "run.num_threads=1"]


# ``python -m pretrain`` whose process sends itself SIGUSR2 in the middle of step SIGNAL_STEP (between
# the forward pass and the commit, with the two data-loader workers running): a deterministic point
# instead of polling the metrics file from outside and signalling whenever the poll notices.
SIGNAL_STEP = 2
SIGNALLED_CLI = f"""
import os, signal, sys
from pretrain import engine
from pretrain.cli import main
from resa_core.errors import run_cli

real = engine.Trainer._mean_over_ranks

def signal_mid_step(self, loss):
    if self.step == {SIGNAL_STEP}:
        os.kill(os.getpid(), signal.SIGUSR2)
    return real(self, loss)

engine.Trainer._mean_over_ranks = signal_mid_step
sys.argv[0] = "python -m pretrain"
run_cli(main)
"""


def cli(output_dir, signalled=False):
    entry = ["-c", SIGNALLED_CLI] if signalled else ["-m", "pretrain"]
    return subprocess.Popen([sys.executable, *entry, DEMO, *TINY, f"output_dir={output_dir}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_signal_mid_epoch_then_resume_equals_an_uninterrupted_run_with_two_workers(tmp_path):
    interrupted = tmp_path / "interrupted"
    process = cli(interrupted, signalled=True)
    _, stderr = process.communicate(timeout=400)
    assert process.returncode == EXIT_UNFINISHED, stderr[-2000:]
    # the step in flight commits, then the run stops at that boundary: 3 of 12 steps, 3 of 6 in epoch 0
    assert f"stopped by SIGUSR2 at step {SIGNAL_STEP + 1}" in stderr
    state = torch.load(checkpoint_path(interrupted), weights_only=True)
    assert (state["global_step"], state["epoch"], state["train_state"]["sampler"]["position"]) == (3, 0, 3)

    resumed = cli(interrupted)
    _, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-2000:]
    reference = torch.load(train(resolve(DEMO, [*TINY, f"output_dir={tmp_path / 'straight'}"])), weights_only=True)
    final = torch.load(checkpoint_path(interrupted), weights_only=True)
    assert final["global_step"] == reference["global_step"] == 12
    for key in ("encoder", "momentum_encoder"):
        for name, tensor in reference[key].items():
            assert torch.equal(tensor, final[key][name]), f"{key}.{name} differs after signal + resume"


def test_submitit_checkpoint_saves_the_last_step_boundary_and_requeues_the_same_call(tmp_path):
    overrides = [*TINY, "data.num_workers=0", f"output_dir={tmp_path}"]
    trainer = Trainer(resolve(DEMO, overrides))
    before = {k: v.clone() for k, v in trainer.method.state_dict().items() if k.endswith("running_mean")}
    views = next(trainer.source.epoch(0, 0))
    trainer._snapshot_boundary()
    trainer.in_step = True
    trainer.model(*views)  # mid-step: BN statistics already moved, nothing committed
    assert any(not torch.equal(v, trainer.method.state_dict()[k]) for k, v in before.items())
    preemption.set_active_trainer(trainer)
    try:
        delayed = preemption.PretrainJob().checkpoint(DEMO, overrides)
    finally:
        preemption.set_active_trainer(None)
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert isinstance(delayed.function, preemption.PretrainJob) and delayed.args == (DEMO, overrides)
    saved = torch.load(checkpoint_path(tmp_path), weights_only=True)
    assert saved["global_step"] == 0
    for key, value in before.items():
        assert torch.equal(saved["train_state"]["model"][key], value)


def test_handlers_are_not_installed_over_another_handler():
    def foreign(signum, frame):
        pass

    previous = signal.signal(signal.SIGUSR2, foreign)
    try:
        installed = preemption.install_handlers()
        assert signal.SIGUSR2 not in installed and signal.getsignal(signal.SIGUSR2) is foreign
        preemption.restore_handlers(installed)
    finally:
        signal.signal(signal.SIGUSR2, previous)
