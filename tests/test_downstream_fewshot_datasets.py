"""Few-shot on real on-disk layouts (CUB-200 index files, FC100 from CIFAR-100 pickles), saved episodes."""

import json

import numpy as np
import pytest
import torch
from test_downstream_layouts import write_cifar100, write_cub

from downstream.cli import main
from downstream.episodes import shared_episodes
from resa_core.errors import run_cli

SMALL = ["image_size=32", "shots=[1,2]", "queries=2", "episodes=30", "num_workers=0"]


def run_cli_status(argv):
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    return info.value.code


def test_two_backbones_share_the_saved_episodes_on_cub(tmp_path):
    root = write_cub(tmp_path / "cub", classes=5, per_class=8)
    run_dir = tmp_path / "run"
    for weights in ("pixels", "random:resnet18"):
        argv = ["fewshot", "--dataset", "cub200", "--weights", weights, "--run-dir", str(run_dir),
                f"data_root={root}", *SMALL]
        assert run_cli_status(argv) == 0
    (episode_file,) = (run_dir / "episodes").glob("cub200-*.npz")
    records = [json.loads(p.read_text()) for p in (run_dir / "records" / "fewshot" / "cub200").rglob("*.json")]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    for record in records:
        assert set(record["metrics"]) == {"acc_5way1shot", "ci95_5way1shot", "acc_5way2shot", "ci95_5way2shot"}
    with np.load(episode_file) as stored:
        assert stored["support_2"].shape == (30, 10) and stored["query_1"].shape == (30, 10)


def test_saved_episodes_are_reloaded_not_resampled(tmp_path):
    labels = np.repeat(np.arange(6), 10)
    indices = np.arange(60) * 3
    first = shared_episodes(tmp_path, "d", indices, labels, 5, [1, 5], 4, 12, seed=7)
    (path,) = (tmp_path / "episodes").glob("*.npz")
    stamp = path.stat().st_mtime_ns
    again = shared_episodes(tmp_path, "d", indices, labels, 5, [1, 5], 4, 12, seed=7)
    assert path.stat().st_mtime_ns == stamp
    for shots in (1, 5):
        np.testing.assert_array_equal(first[shots].support, again[shots].support)
        np.testing.assert_array_equal(first[shots].query_labels, again[shots].query_labels)
    other_seed = shared_episodes(tmp_path, "d", indices, labels, 5, [1], 4, 12, seed=8)
    assert len(list((tmp_path / "episodes").glob("*.npz"))) == 2
    assert not np.array_equal(other_seed[1].support, first[1].support)


def test_fc100_episodes_come_from_the_test_superclasses(tmp_path):
    root = write_cifar100(tmp_path / "cifar", repeats=3)
    argv = ["fewshot", "--dataset", "fc100", "--weights", "pixels", "--run-dir", str(tmp_path / "run"),
            f"data_root={root}", *SMALL]
    assert run_cli_status(argv) == 0
    (path,) = (tmp_path / "run" / "records").rglob("seed0.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and 0.0 <= record["metrics"]["acc_5way1shot"] <= 100.0
    # foolbox's CIFAR-100 samples in test superclasses 0/7/12/14 (fixture coarse = fine % 20): fine 0, 14,
    # 40, 72 once and 92 twice, tiled 3x in each of the train and test pickles
    (cache,) = (tmp_path / "run" / "features").glob("*.pt")
    labels = torch.load(cache, weights_only=True)["labels"]
    assert len(labels) == 6 * 6 and len(labels.unique()) == 5
