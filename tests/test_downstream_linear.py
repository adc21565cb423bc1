"""Linear probe (W-MSE/ReSA B.3 protocol) on separable synthetic features."""

import torch

from downstream.tasks.linear import topk_accuracy, train_linear_probe


def _blobs(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.eye(4, 32) * 6.0
    labels = torch.arange(count) % 4
    return centres[labels] + torch.randn(count, 32, generator=generator), labels


def test_linear_probe_separates_separable_features():
    generator = torch.Generator().manual_seed(0)
    (train, train_labels), (test, test_labels) = _blobs(400, generator), _blobs(200, generator)
    probe = train_linear_probe(train, train_labels, 4, 200, 1e-2, 1e-6, 5e-6, 100, seed=0)
    with torch.no_grad():
        metrics = topk_accuracy(probe(test), test_labels)
    assert metrics["top1"] > 97.0
    assert metrics["top5"] == 100.0  # four classes: top-5 is top-4, always right


def test_linear_probe_is_seeded():
    generator = torch.Generator().manual_seed(0)
    train, labels = _blobs(300, generator)
    first = train_linear_probe(train, labels, 4, 3, 1e-2, 1e-6, 5e-6, 64, seed=5)
    second = train_linear_probe(train, labels, 4, 3, 1e-2, 1e-6, 5e-6, 64, seed=5)
    assert torch.equal(first.weight, second.weight)


def test_topk_accuracy_breaks_ties_to_lower_class():
    logits = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    assert topk_accuracy(logits, torch.tensor([1, 1])) == {"top1": 50.0, "top5": 100.0}
