"""The epoch record's ``epoch_loss`` is the mean of all the epoch's step losses, resumed or not.

A run stopped mid-epoch, or exactly at an epoch's last step (``run.max_steps`` or a pre-emption
landing there), used to log the mean of the resumed invocation's batches only, and 0.0 when it
had none: a curve read from ``metrics.jsonl`` then showed a false drop to zero.
"""

import json

import pytest
from conftest import repo_path

from pretrain.config import resolve
from pretrain.engine import Unfinished, train

DEMO = repo_path("configs/pretrain/demo_fmnist_resa.yaml")
# 48 images at batch 8: 6 steps per epoch, 2 epochs; every step's loss is logged
TINY = ["data.train_size=48", "optim.batch_size=8", "epochs=2", "optim.warmup_epochs=1", "data.num_workers=0",
        "model.projector_hidden_dim=32", "model.projector_out_dim=16", "run.log_every_steps=1",
        "run.deterministic=true", "run.num_threads=1"]
STEPS_PER_EPOCH = 6


def records(output_dir) -> list[dict]:
    with (output_dir / "metrics.jsonl").open() as lines:
        return [json.loads(line) for line in lines]


def epoch_losses(output_dir) -> dict[int, float]:
    return {r["epoch"]: r["epoch_loss"] for r in records(output_dir) if "epoch_loss" in r}


def step_loss_means(output_dir) -> dict[int, float]:
    """The mean of the logged per-step losses of each epoch (steps 1-6 -> epoch 1, 7-12 -> epoch 2)."""
    losses = {r["step"]: r["loss"] for r in records(output_dir) if "loss" in r}
    return {epoch: sum(losses[s] for s in range((epoch - 1) * STEPS_PER_EPOCH + 1, epoch * STEPS_PER_EPOCH + 1))
            / STEPS_PER_EPOCH for epoch in (1, 2)}


def test_a_run_stopped_mid_epoch_and_at_the_epoch_end_logs_the_whole_epochs_mean_loss(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(resolve(DEMO, [*TINY, f"output_dir={straight}"]))
    # stop at step 4 (mid-epoch 1), then at step 6 (the last step of epoch 1, before its record), then finish
    for max_steps in (4, 2):
        with pytest.raises(Unfinished, match=f"after {max_steps} steps"):
            train(resolve(DEMO, [*TINY, f"output_dir={split}", f"run.max_steps={max_steps}"]))
    train(resolve(DEMO, [*TINY, f"output_dir={split}"]))

    expected = step_loss_means(straight)
    assert epoch_losses(straight) == pytest.approx(expected, rel=1e-12)
    assert step_loss_means(split) == expected  # the resumed run replays the same steps exactly
    assert epoch_losses(split) == pytest.approx(expected, rel=1e-12)
