"""Pretraining engine on real Fashion-MNIST at toy size: checkpoint contract, resume, bad input."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import repo_path

from pretrain.checkpoint import checkpoint_path
from pretrain.config import resolve
from pretrain.engine import NonFiniteLoss, Unfinished, train
from resa_core.errors import UserError

DEMO = repo_path("configs/pretrain/demo_fmnist_resa.yaml")
TINY = ["data.train_size=64", "optim.batch_size=16", "epochs=2", "optim.warmup_epochs=1",
        "model.projector_hidden_dim=64", "model.projector_out_dim=32", "run.log_every_steps=1"]


def tiny_config(tmp_path, *extra, method_file=DEMO):
    return resolve(method_file, [*TINY, f"output_dir={tmp_path}", *extra])


def test_checkpoint_follows_the_contract_and_loads_weights_only(tmp_path):
    ckpt = train(tiny_config(tmp_path))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["format_version"] == 1
    assert (state["method"], state["arch"], state["epoch"], state["global_step"]) == ("resa", "resnet18", 2, 8)
    assert set(state["encoder"]) == set(state["momentum_encoder"])
    assert "conv1.weight" in state["encoder"] and not any(k.startswith(("fc.", "module.")) for k in state["encoder"])
    assert not torch.equal(state["encoder"]["conv1.weight"], state["momentum_encoder"]["conv1.weight"])
    assert state["config"]["loss"]["temperature"] == 0.4
    assert {"model", "optimizer", "torch_rng", "sampler"} <= set(state["train_state"])
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) >= 8 and '"loss"' in lines[0]


def test_no_momentum_variant_has_no_momentum_encoder(tmp_path):
    state = torch.load(train(tiny_config(tmp_path, "model.momentum_encoder=false", "epochs=1")),
                       weights_only=True)
    assert "momentum_encoder" not in state


def test_resume_mid_epoch_gives_identical_weights(tmp_path):
    reference = torch.load(train(tiny_config(tmp_path / "straight")), weights_only=True)
    with pytest.raises(Unfinished):
        train(tiny_config(tmp_path / "resumed", "run.max_steps=3"))  # 4 steps per epoch: mid-epoch stop
    assert torch.load(checkpoint_path(tmp_path / "resumed"), weights_only=True)["global_step"] == 3
    resumed = torch.load(train(tiny_config(tmp_path / "resumed")), weights_only=True)
    for key in ("encoder", "momentum_encoder"):
        for name, tensor in reference[key].items():
            assert torch.equal(tensor, resumed[key][name]), f"{key}.{name} differs after resume"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    train(tiny_config(tmp_path, "epochs=1"))
    before = checkpoint_path(tmp_path).read_bytes()
    with pytest.raises(NonFiniteLoss, match="non-finite loss .* at step 4"):
        train(tiny_config(tmp_path, "loss.temperature=.nan"))
    assert checkpoint_path(tmp_path).read_bytes() == before


def test_resuming_another_method_is_an_error(tmp_path):
    train(tiny_config(tmp_path, "epochs=1"))
    with pytest.raises(Exception, match="checkpoint method is 'resa'"):
        train(tiny_config(tmp_path, "method=infonce"))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pretrain", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, message", [
    ([DEMO, "optim.base_lrr=0.1"], "unknown config key 'optim.base_lrr'"),
    ([DEMO, "method=nosuchmethod"], "unknown method 'nosuchmethod'"),
    ([DEMO, "arch=resnet7"], "unknown arch 'resnet7'"),
    ([DEMO, "data.root=/nonexistent/fmnist"], "Fashion-MNIST train files not found"),
    (["configs/pretrain/missing.yaml"], "config file not found"),
])
def test_bad_input_is_one_line_and_non_zero(tmp_path, args, message):
    result = run_cli(*args, f"output_dir={tmp_path}", *TINY)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and message in result.stderr
    assert not checkpoint_path(tmp_path).exists()


def test_unfinished_run_exits_non_zero(tmp_path):
    result = run_cli(DEMO, f"output_dir={tmp_path}", *TINY, "run.max_steps=2")
    assert result.returncode == 3, result.stderr


def test_training_leaves_the_callers_torch_settings_as_it_found_them(tmp_path):
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(2)
    try:
        train(tiny_config(tmp_path, "epochs=1", "run.num_threads=1", "run.deterministic=true"))
        assert torch.get_num_threads() == 2
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def test_float64_runs_refuse_amp(tmp_path):
    with pytest.raises(UserError, match="run.dtype = float64 with run.amp = bf16"):
        tiny_config(tmp_path, "run.dtype=float64", "run.amp=bf16")


def test_max_steps_counts_the_steps_of_each_invocation(tmp_path):
    """'Resume with the same command' advances run.max_steps more steps each time, then finishes."""
    steps = []
    for _ in range(2):
        with pytest.raises(Unfinished, match="3 steps of this invocation"):
            train(tiny_config(tmp_path, "run.max_steps=3"))
        steps.append(torch.load(checkpoint_path(tmp_path), weights_only=True)["global_step"])
    assert steps == [3, 6]
    final = torch.load(train(tiny_config(tmp_path, "run.max_steps=3")), weights_only=True)
    assert (final["epoch"], final["global_step"]) == (2, 8)


def test_max_steps_ending_on_the_runs_last_step_finishes_the_run(tmp_path):
    """A limit that lands on the last of the schedule's 8 steps is no stop: the run writes its last
    epoch and returns, instead of exiting unfinished with nothing left to train."""
    with pytest.raises(Unfinished, match="4 steps of this invocation"):
        train(tiny_config(tmp_path, "run.max_steps=4"))
    final = torch.load(train(tiny_config(tmp_path, "run.max_steps=4")), weights_only=True)
    assert (final["epoch"], final["global_step"]) == (2, 8)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "epoch_loss" in r] == [1, 2]


def test_importing_the_entry_module_runs_nothing(monkeypatch):
    import importlib

    monkeypatch.setattr(sys, "argv", ["python -m pretrain"])  # main() would exit 2: no config argument
    monkeypatch.delitem(sys.modules, "pretrain.__main__", raising=False)
    module = importlib.import_module("pretrain.__main__")
    assert callable(module.main)
