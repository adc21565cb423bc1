"""The DataLoader worker count never changes the batches or the trained weights (docs/pretrain.md "Data").

Both sources are checked with 0, 1 and 2 workers, bit for bit: the in-memory batched path
(what the engine picks for Fashion-MNIST whatever ``data.num_workers`` is) and the per-sample
PIL path of file-backed datasets; then two training steps of the engine end with equal weights.
Blur and solarization are switched on so that every augmentation draw is exercised.
"""

import itertools
import os

import pytest
import torch
from conftest import REPO_ROOT

from pretrain.checkpoint import checkpoint_path
from pretrain.config import resolve
from pretrain.data.datasets import load_train_set, open_split
from pretrain.data.loader import InMemoryBatches, LoaderBatches
from pretrain.data.views import view_list
from pretrain.engine import Unfinished, train

DEMO = os.path.join(REPO_ROOT, "configs", "pretrain", "demo_fmnist_resa.yaml")
TINY = ["data.train_size=32", "optim.batch_size=8", "epochs=1", "optim.warmup_epochs=1", "run.max_steps=2",
        "model.projector_hidden_dim=32", "model.projector_out_dim=16", "augment.blur_prob=0.5",
        "augment.solarization_prob=0.2", "run.deterministic=true", "run.num_threads=1", "run.tensorboard=false"]
WORKERS = (0, 1, 2)


def _config(workers: int, output_dir) -> dict:
    return resolve(DEMO, [*TINY, f"data.num_workers={workers}", f"output_dir={output_dir}"])


def _assert_same_batches(runs: dict[int, list[list[torch.Tensor]]]) -> None:
    reference = runs[0]
    assert len(reference) == 2 and len(reference[0]) == 2 and reference[0][0].shape == (8, 3, 32, 32)
    assert not torch.equal(reference[0][0], reference[0][1])  # two views, two draws
    for workers, batches in runs.items():
        for step, (got, want) in enumerate(zip(batches, reference, strict=True)):
            for view, (a, b) in enumerate(zip(got, want, strict=True)):
                assert torch.equal(a, b), f"{workers} workers: batch {step} view {view} differs from 0 workers"


def test_the_in_memory_batched_path_yields_the_same_batches_for_0_1_2_workers(tmp_path):
    config = _config(0, tmp_path)
    data, views = load_train_set(config["data"]), view_list(config)
    runs = {workers: list(itertools.islice(InMemoryBatches(data, views, config["seed"], "fashion_mnist", 8,
                                                           num_workers=workers).epoch(0, 1), 2))
            for workers in WORKERS}  # from step 1 on: a resume point
    _assert_same_batches(runs)


def test_the_per_sample_pil_path_yields_the_same_batches_for_0_1_2_workers(tmp_path):
    config = _config(0, tmp_path)
    data = open_split(config["data"], "train")
    runs = {workers: list(itertools.islice(LoaderBatches(data, view_list(config), config["seed"], "fashion_mnist",
                                                         8, num_workers=workers).epoch(0, 1), 2))
            for workers in WORKERS}
    _assert_same_batches(runs)


@pytest.mark.slow
def test_two_training_steps_end_with_the_same_weights_for_0_1_2_workers(tmp_path):
    weights = {}
    for workers in WORKERS:
        with pytest.raises(Unfinished, match="run.max_steps"):  # 2 of the epoch's 4 steps, then a checkpoint
            train(_config(workers, tmp_path / str(workers)))
        state = torch.load(checkpoint_path(tmp_path / str(workers)), weights_only=True)
        assert state["global_step"] == 2
        weights[workers] = state
    # the steps moved the weights: after 2 steps the EMA (momentum 0.996) trails the encoder
    assert any(not torch.equal(weights[0]["momentum_encoder"][name], tensor)
               for name, tensor in weights[0]["encoder"].items())
    for workers in (1, 2):
        for key in ("encoder", "momentum_encoder"):
            for name, tensor in weights[0][key].items():
                assert torch.equal(weights[workers][key][name], tensor), f"{key}.{name}: {workers} vs 0 workers"
