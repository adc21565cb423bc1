"""Documented pretraining behaviours, each checked at a deterministic point (docs/pretrain.md).

Wrong-typed config values, refusing another arch's checkpoint, ``run.checkpoint_every_minutes``,
SIGTERM, a kill during an atomic write, and the online monitor reading the momentum encoder.
"""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pretrain import engine
from pretrain.checkpoint import checkpoint_path
from pretrain.config import resolve
from pretrain.engine import Unfinished, build_model, train
from resa_core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "configs" / "pretrain" / "demo_fmnist_resa.yaml")
TINY = ["data.train_size=64", "optim.batch_size=16", "epochs=1", "optim.warmup_epochs=1",
        "model.projector_hidden_dim=32", "model.projector_out_dim=16", "run.log_every_steps=1", "run.num_threads=1"]


def tiny(tmp_path, *extra):
    return resolve(DEMO, [*TINY, f"output_dir={tmp_path}", *extra])


@pytest.mark.parametrize(("override", "message"), [
    ("epochs=ten", "'epochs' expects int"),
    ("optim.base_lr=fast", "'optim.base_lr' expects float"),
    ("model.predictor=maybe", "'model.predictor' expects bool"),
])
def test_a_wrong_typed_value_is_a_one_line_error_with_exit_status_2(tmp_path, override, message):
    result = subprocess.run([sys.executable, "-m", "pretrain", DEMO, override, f"output_dir={tmp_path}"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not checkpoint_path(tmp_path).exists()


def test_a_wrong_typed_value_in_a_config_file_is_refused_too(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("method: resa\nepochs: ten\n")
    with pytest.raises(UserError, match="'epochs' expects int"):
        resolve(config)


def test_exponent_floats_are_floats_although_yaml_reads_them_as_strings():
    config = resolve(DEMO, ["optim.weight_decay=5e-4", "run.checkpoint_every_minutes=1E-9"])
    assert config["optim"]["weight_decay"] == 5e-4 and config["run"]["checkpoint_every_minutes"] == 1e-9


def test_resuming_a_checkpoint_of_another_arch_is_refused_and_leaves_it_intact(tmp_path):
    train(tiny(tmp_path))
    before = checkpoint_path(tmp_path).read_bytes()
    with pytest.raises(UserError, match="checkpoint arch is 'resnet18' but the config asks for 'resnet18_cifar'"):
        train(tiny(tmp_path, "arch=resnet18_cifar", "epochs=2"))
    assert checkpoint_path(tmp_path).read_bytes() == before


def saved_steps(monkeypatch) -> list[int]:
    """Record the global step of every checkpoint the engine writes."""
    steps = []
    real = engine.save_checkpoint

    def recording(path, method, optimizer, config, epoch, step, *args, **kwargs):
        steps.append(step)
        return real(path, method, optimizer, config, epoch, step, *args, **kwargs)

    monkeypatch.setattr(engine, "save_checkpoint", recording)
    return steps


@pytest.mark.parametrize(("minutes", "expected"), [(10.0, [4]), (1e-9, [1, 2, 3, 4, 4])])
def test_checkpoint_every_minutes_adds_mid_epoch_checkpoints(tmp_path, monkeypatch, minutes, expected):
    steps = saved_steps(monkeypatch)
    train(tiny(tmp_path, f"run.checkpoint_every_minutes={minutes}"))
    assert steps == expected  # 4 steps per epoch; the epoch end always saves


def test_sigterm_saves_the_step_boundary_and_stops(tmp_path, monkeypatch):
    steps = saved_steps(monkeypatch)
    real_step = engine.Trainer._train_step

    def step_then_sigterm(self, *args):
        out = real_step(self, *args)
        if self.step == 2:
            signal.raise_signal(signal.SIGTERM)  # handled by pretrain.preemption, as from SLURM/kill
        return out

    monkeypatch.setattr(engine.Trainer, "_train_step", step_then_sigterm)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Unfinished, match="stopped by SIGTERM at step 2"):
        train(tiny(tmp_path, "epochs=2"))
    assert steps == [2]
    state = torch.load(checkpoint_path(tmp_path), weights_only=True)
    assert state["global_step"] == 2 and state["train_state"]["sampler"]["position"] == 2
    assert signal.getsignal(signal.SIGTERM) is handler  # the caller's handler is back


def test_a_kill_during_an_atomic_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "checkpoint.pth"
    target.write_bytes(b"previous good checkpoint")
    writer = textwrap.dedent(f"""
        import os, signal
        from resa_core.atomic import write_atomic

        def half_then_killed(handle):
            handle.write(b"half of a new checkpoint")
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        write_atomic({str(target)!r}, half_then_killed)
    """)
    result = subprocess.run([sys.executable, "-c", writer], cwd=ROOT, timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"previous good checkpoint"
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert all(name.startswith(".checkpoint.pth.") and name.endswith(".tmp") for name in leftovers), leftovers


def test_online_monitor_reads_the_momentum_encoder(tmp_path):
    from pretrain.monitor import Monitor

    config = tiny(tmp_path, "monitor.train_size=100", "monitor.eval_size=100")
    method = build_model(config, torch.device("cpu"))
    monitor = Monitor(config)
    reference = monitor(method, torch.device("cpu"))
    with torch.no_grad():
        for parameter in method.encoder.parameters():
            parameter.normal_()  # the online encoder changes: the monitor must not see it
    assert monitor(method, torch.device("cpu")) == reference
    with torch.no_grad():
        for parameter in method.momentum_encoder.parameters():
            parameter.normal_()
    assert monitor(method, torch.device("cpu")) != reference
