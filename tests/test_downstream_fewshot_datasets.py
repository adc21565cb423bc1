"""Few-shot on real on-disk layouts (CUB-200 index files, FC100 from CIFAR-100 pickles), saved episodes."""

import json

import numpy as np
import pytest
import torch
from test_downstream_layouts import write_cifar100, write_cub

from downstream.cli import main
from downstream.episodes import Episodes, shared_episodes
from downstream.tasks.fewshot import episode_accuracies, mean_and_ci95
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
    caches = [torch.load(p, weights_only=True) for p in (run_dir / "features").glob("*.pt")]
    assert len(caches) == 2 and torch.equal(caches[0]["labels"], caches[1]["labels"])
    labels = caches[0]["labels"].numpy()
    with np.load(episode_file) as stored:
        episodes = {shots: Episodes(*(stored[f"{field}_{shots}"] for field in
                                      ("support", "support_labels", "query", "query_labels"))) for shots in (1, 2)}
    for shots, sampled in episodes.items():
        assert sampled.support.shape == (30, 5 * shots) and sampled.query.shape == (30, 5 * 2)
        for support, support_labels, query, query_labels in zip(*vars(sampled).values(), strict=True):
            assert not set(support) & set(query) and len(np.unique(labels[support])) == 5
            for local in range(5):  # one real CUB class behind each local label
                assert len(np.unique(labels[np.concatenate([support[support_labels == local],
                                                            query[query_labels == local]])])) == 1
    # each backbone's record is the accuracy of its own features on the saved episodes: both used the file
    recomputed = sorted(tuple(mean_and_ci95(episode_accuracies(cache["features"], episodes[shots], 5, 1.0, 2000))[0]
                              for shots in (1, 2)) for cache in caches)
    reported = sorted((r["metrics"]["acc_5way1shot"], r["metrics"]["acc_5way2shot"]) for r in records)
    np.testing.assert_allclose(recomputed, reported, rtol=1e-12)


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
