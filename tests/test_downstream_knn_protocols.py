"""k-NN: the W-MSE majority protocol against its reference code, tie-breaking, and a CIFAR run."""

import json

import numpy as np
import pytest
import torch
from test_downstream_layouts import write_cifar10

from downstream.cli import main
from downstream.tasks.knn import knn_metrics, top_neighbours
from resa_core.errors import run_cli


def _wmse_reference_knn(x_train, y_train, x_test, y_test, k=5):
    """htdt/self-supervised eval/knn.py, transcribed: cdist, topk smallest, most frequent label."""
    d = torch.cdist(x_test, x_train)
    topk = torch.topk(d, k=k, dim=1, largest=False)
    labels = y_train[topk.indices]
    pred = torch.empty_like(y_test)
    for i in range(len(labels)):
        values, counts = labels[i].unique(return_counts=True)
        pred[i] = values[counts.argmax()]
    return 100.0 * (pred == y_test).float().mean().item()


def test_majority_vote_equals_wmse_reference_code():
    generator = torch.Generator().manual_seed(2)
    bank, queries = torch.randn(400, 12, generator=generator), torch.randn(150, 12, generator=generator)
    bank_labels = torch.randint(0, 6, (400,), generator=generator)
    query_labels = torch.randint(0, 6, (150,), generator=generator)
    for k in (1, 5, 9):
        ours = knn_metrics(bank, bank_labels, queries, query_labels, 6, majority_ks=[k], chunk_size=32)
        assert ours[f"top1_majority_k{k}"] == pytest.approx(
            _wmse_reference_knn(bank, bank_labels, queries, query_labels, k)
        )


def test_both_protocols_from_one_matmul_equal_each_protocol_alone():
    generator = torch.Generator().manual_seed(5)
    bank = torch.randn(300, 10, generator=generator) * torch.rand(300, 1, generator=generator).mul(3).add(0.1)
    queries = torch.randn(90, 10, generator=generator) * 2.0
    bank_labels, query_labels = torch.randint(0, 8, (300,), generator=generator), torch.randint(0, 8, (90,))
    both = knn_metrics(bank, bank_labels, queries, query_labels, 8, ks=[1, 7], majority_ks=[3, 5], chunk_size=16)
    weighted = knn_metrics(bank, bank_labels, queries, query_labels, 8, ks=[1, 7], chunk_size=50)
    majority = knn_metrics(bank, bank_labels, queries, query_labels, 8, majority_ks=[3, 5], chunk_size=50)
    assert both == weighted | majority
    for k in (3, 5):  # the shared product still gives the W-MSE Euclidean neighbours
        assert both[f"top1_majority_k{k}"] == pytest.approx(
            _wmse_reference_knn(bank, bank_labels, queries, query_labels, k))


def test_majority_ties_go_to_the_lower_class():
    bank = torch.tensor([[1.0], [2.0], [-1.0], [-2.0]])
    labels = torch.tensor([3, 1, 1, 3])
    # query at 0: all four neighbours; classes 1 and 3 have two votes each -> class 1
    metrics = knn_metrics(bank, labels, torch.zeros(1, 1), torch.tensor([1]), 4, majority_ks=[4])
    assert metrics == {"top1_majority_k4": 100.0}


def test_top_neighbours_breaks_boundary_ties_by_index():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.1], [0.2, 0.2, 0.3, 0.2, 0.2]], dtype=torch.float64)
    values, indices = top_neighbours(scores, 2)
    assert indices.tolist() == [[1, 0], [2, 0]] and values.tolist() == [[0.9, 0.5], [0.3, 0.2]]


def test_cli_knn_both_protocols_on_cifar_layout_with_label_subset(tmp_path, capsys):
    root = write_cifar10(tmp_path / "cifar", repeats=5)  # 100 real images per batch file
    argv = ["knn", "--dataset", "cifar10", "--weights", "pixels", "--run-dir", str(tmp_path / "run"),
            f"data_root={root}", "protocol=both", "ks=[1,5]", "label_subset=10percent", "test_size=40",
            "num_workers=0"]
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    assert info.value.code == 0
    (path,) = (tmp_path / "run" / "records" / "knn" / "cifar10").rglob("seed0.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and record["config"]["image_size"] == 32
    assert set(record["metrics"]) == {"top1_k1", "top5_k1", "top1_k5", "top5_k5", "top1_majority_k5"}
    cached = [torch.load(p, weights_only=True) for p in (tmp_path / "run" / "features").glob("*.pt")]
    test, bank = sorted(cached, key=lambda stored: len(stored["labels"]))
    assert (len(test["labels"]), len(bank["labels"])) == (40, 50)  # bank: 10% of each class of 500 images
    # foolbox's samples are tiled, so a query whose image is in the bank has an exact duplicate there:
    # 1-NN on raw pixels gets at least those right
    present = (test["features"][:, None] == bank["features"][None]).all(-1).any(1).float().mean().item()
    assert record["metrics"]["top1_k1"] >= 100.0 * present > 50.0
    assert np.isfinite(list(record["metrics"].values())).all()
